// WiFiClient (esp8266/Arduino libraries/ESP8266WiFi/src/WiFiClient.h). Declarations only.
#pragma once
#include <Arduino.h>
#include "Client.h"

class WiFiClient : public Client {
 public:
  WiFiClient();
  virtual ~WiFiClient();
  int connect(IPAddress ip, uint16_t port) override;
  int connect(const char* host, uint16_t port) override;
  virtual int connect(const String& host, uint16_t port);
  size_t write(uint8_t) override;
  size_t write(const uint8_t* buf, size_t size) override;
  int available() override;
  int read() override;
  int read(uint8_t* buf, size_t size) override;
  int peek() override;
  void flush() override;
  void stop() override;
  uint8_t connected() override;
  operator bool() override;
  void setNoDelay(bool nodelay);
};
