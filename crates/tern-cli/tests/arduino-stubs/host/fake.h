// State of the host fakes behind the stub headers: what the driver sets (clock, Wi-Fi,
// whether the next TLS / MQTT connection succeeds) and what it reads back (pins, serial
// output, and one event line per call into a network API, in call order).
#pragma once
#include <stdint.h>
#include <time.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace fake {
extern unsigned long now_ms;  // millis()
extern time_t wall;           // time(nullptr): 0 until "NTP" answers
extern bool wifi_up;          // WiFi.status() == WL_CONNECTED
extern bool tls_ok;           // the next TLS connect succeeds
extern bool mqtt_ok;          // the next MQTT CONNECT is accepted
extern bool mqtt_up;          // PubSubClient::connected()
extern bool verify_ok;        // ESP32 verify() result
extern int mqtt_state;        // PubSubClient::state()
extern std::string serial;    // everything printed on Serial
extern std::vector<std::string> events;
extern std::map<int, int> pins;  // last digitalWrite per pin
extern std::function<void(char*, uint8_t*, unsigned int)> callback;
}  // namespace fake
