#pragma once
#warning WiFiClientSecure has been deprecated, please use NetworkClientSecure instead.
#include "NetworkClientSecure.h"
#define WiFiClientSecure NetworkClientSecure
