// esp8266/Arduino libraries/ESP8266WiFi/src/WiFiClientSecure.h (core 3.x): BearSSL.
#pragma once
#include "WiFiClient.h"
#include "WiFiClientSecureBearSSL.h"

using namespace BearSSL;
