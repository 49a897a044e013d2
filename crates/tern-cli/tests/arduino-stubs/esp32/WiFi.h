// arduino-esp32 3.x WiFi (libraries/WiFi/src/WiFi.h, WiFiSTA.h, WiFiGeneric.h,
// WiFiType.h; wl_status_t from libraries/Network). Declarations only.
#ifndef WiFi_h
#define WiFi_h

#include <Arduino.h>
#include "Client.h"

typedef enum {
  WL_NO_SHIELD = 255,
  WL_STOPPED = 254,
  WL_IDLE_STATUS = 0,
  WL_NO_SSID_AVAIL = 1,
  WL_SCAN_COMPLETED = 2,
  WL_CONNECTED = 3,
  WL_CONNECT_FAILED = 4,
  WL_CONNECTION_LOST = 5,
  WL_DISCONNECTED = 6
} wl_status_t;

typedef enum {
  WIFI_MODE_NULL = 0, WIFI_MODE_STA, WIFI_MODE_AP, WIFI_MODE_APSTA, WIFI_MODE_MAX
} wifi_mode_t;

#define WIFI_OFF   WIFI_MODE_NULL
#define WIFI_STA   WIFI_MODE_STA
#define WIFI_AP    WIFI_MODE_AP
#define WIFI_AP_STA WIFI_MODE_APSTA

class NetworkClient : public Client {
 public:
  NetworkClient();
  ~NetworkClient();
  int connect(IPAddress ip, uint16_t port) override;
  int connect(const char* host, uint16_t port) override;
  size_t write(uint8_t data) override;
  size_t write(const uint8_t* buf, size_t size) override;
  int available() override;
  int read() override;
  int read(uint8_t* buf, size_t size) override;
  int peek() override;
  void flush() override;
  void stop() override;
  uint8_t connected() override;
  operator bool() override;
};

class WiFiClass {
 public:
  // WiFiGeneric
  static bool mode(wifi_mode_t);
  static wifi_mode_t getMode();
  void persistent(bool persistent);
  bool setAutoReconnect(bool autoReconnect);
  // WiFiSTA
  wl_status_t begin(const char* ssid, const char* passphrase = NULL, int32_t channel = 0,
                    const uint8_t* bssid = NULL, bool connect = true);
  wl_status_t begin();
  bool reconnect();
  bool disconnect(bool wifioff = false, bool eraseap = false);
  bool isConnected();
  IPAddress localIP();
  wl_status_t status();
  String SSID() const;
  int8_t RSSI();
  String macAddress();
};

extern WiFiClass WiFi;

#endif
