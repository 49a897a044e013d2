// ESP8266WiFi (esp8266/Arduino libraries/ESP8266WiFi/src: ESP8266WiFi.h, ESP8266WiFiSTA.h,
// ESP8266WiFiGeneric.h, ESP8266WiFiType.h, include/wl_definitions.h). Declarations only.
#ifndef WiFi_h
#define WiFi_h

#include <Arduino.h>

typedef enum {
  WL_NO_SHIELD = 255,
  WL_IDLE_STATUS = 0,
  WL_NO_SSID_AVAIL = 1,
  WL_SCAN_COMPLETED = 2,
  WL_CONNECTED = 3,
  WL_CONNECT_FAILED = 4,
  WL_CONNECTION_LOST = 5,
  WL_WRONG_PASSWORD = 6,
  WL_DISCONNECTED = 7
} wl_status_t;

typedef enum WiFiMode {
  WIFI_OFF = 0, WIFI_STA = 1, WIFI_AP = 2, WIFI_AP_STA = 3
} WiFiMode_t;

struct WiFiState;

class ESP8266WiFiClass {
 public:
  // ESP8266WiFiGeneric
  bool mode(WiFiMode_t, WiFiState* state = nullptr);
  WiFiMode_t getMode();
  void persistent(bool persistent);
  bool setSleepMode(int type, uint8_t listenInterval = 0);
  bool hostname(const char* aHostname);
  // ESP8266WiFiSTA
  wl_status_t begin(const char* ssid, const char* passphrase = NULL, int32_t channel = 0,
                    const uint8_t* bssid = NULL, bool connect = true);
  wl_status_t begin(char* ssid, char* passphrase = NULL, int32_t channel = 0,
                    const uint8_t* bssid = NULL, bool connect = true);
  wl_status_t begin();
  bool reconnect();
  bool disconnect(bool wifioff = false);
  bool isConnected();
  bool setAutoReconnect(bool autoReconnect);
  bool getAutoReconnect();
  IPAddress localIP();
  wl_status_t status();
  String SSID() const;
  int8_t RSSI();
  String macAddress();
};

extern ESP8266WiFiClass WiFi;

#include "WiFiClient.h"
#include "WiFiClientSecure.h"

#endif
