// Runs a generated sketch's setup() and loop() on the host against the fakes, with a fake
// clock, and checks what it does: Wi-Fi first, NTP before TLS (when a CA is checked), one
// validation setter, the will and the retained status/state, the subscription after each
// connect, relay commands, telemetry, and a non-blocking reconnect whose wait doubles.
//
// Compiled by tests/sketch.rs with the sketch and fake_core.cpp, and:
//   -DTERN_SETTER='"setTrustAnchors"'  the one validation setter expected
//   -DTERN_CLOCK=1|0                   whether the sketch must wait for NTP
//   -DTERN_VERIFY=1|0                  ESP32 fingerprint: verify() after the handshake
#include <Arduino.h>
#include <PubSubClient.h>
#include <stdio.h>

#include <string>
#include <vector>

#include "fake.h"

#ifdef ESP8266
#define ID "ESP8266Client-a1b2c3"
#define RELAY 4
#define LED 5
#else
#define ID "ESP32Client-a1b2c3"
#define RELAY 26
#define LED 2
#endif

static int failures = 0;
#define CHECK(cond)                                                 \
  do {                                                              \
    if (!(cond)) {                                                  \
      failures++;                                                   \
      fprintf(stderr, "FAIL driver.cpp:%d: %s\n", __LINE__, #cond); \
    }                                                               \
  } while (0)

static size_t count(const std::string& prefix) {
  size_t n = 0;
  for (const auto& e : fake::events) n += e.compare(0, prefix.size(), prefix) == 0;
  return n;
}

static bool has(const std::string& e) { return count(e) > 0; }

static long first(const std::string& prefix) {
  for (size_t i = 0; i < fake::events.size(); i++) {
    if (fake::events[i].compare(0, prefix.size(), prefix) == 0) return (long)i;
  }
  return -1;
}

static bool printed(const std::string& s) { return fake::serial.find(s) != std::string::npos; }

static void step(unsigned long ms) {
  fake::now_ms += ms;
  loop();
}

static void deliver(const char* topic, const char* payload) {
  std::string t(topic);
  std::vector<uint8_t> p(payload, payload + strlen(payload));
  fake::callback(&t[0], p.data(), (unsigned int)p.size());
}

int main() {
  fake::now_ms = 1;
  setup();
  CHECK(has("pinMode 4") || has("pinMode 26"));
  CHECK(fake::pins[RELAY] == LOW && fake::pins[LED] == LOW);
  CHECK(count(TERN_SETTER) == 1);
  CHECK(count("setTrustAnchors") + count("setFingerprint") + count("setKnownKey") +
            count("setCACert") ==
        1);
  CHECK(has("WiFi.begin your-wifi-name your-wifi-password"));
  CHECK(has("mqtt.setServer broker.example.com:8883"));
  CHECK(has("mqtt.setBufferSize 1024"));
  CHECK(has("mqtt.setKeepAlive 30"));
  CHECK(has("mqtt.setSocketTimeout 10"));
  CHECK(has("mqtt.setCallback"));
  CHECK(!has("tls.connect"));

  // Wi-Fi down: the loop returns at once and says what it waits for.
  step(10);
  CHECK(printed("Waiting for Wi-Fi \"your-wifi-name\"..."));
  CHECK(!has("tls.connect") && !has("configTime"));

  fake::wifi_up = true;
  step(10);
  CHECK(printed("Wi-Fi connected, IP address 10.0.0.2"));
#if TERN_CLOCK
  CHECK(count("configTime 0 0 pool.ntp.org time.nist.gov") == 1);
  CHECK(!has("tls.connect"));  // no time yet: no TLS
  step(31000);
  CHECK(printed("No time from NTP yet"));
  CHECK(count("configTime") == 2);
  CHECK(!has("tls.connect"));
  fake::wall = 2000000000;  // 2033-05-18 03:33:20 UTC
  step(10);
  CHECK(printed("Clock set by NTP: 2033-05-18 03:33:20 UTC"));
  CHECK(first("configTime") < first("tls.connect"));
#else
  CHECK(!has("configTime"));
#endif
  CHECK(count("tls.connect broker.example.com:8883") == 1);
#ifdef ESP8266
  CHECK(first("probeMaxFragmentLength broker.example.com 1024") < first("tls.connect"));
  CHECK(first("setBufferSizes 16384 512") < first("tls.connect"));
#endif
#if TERN_VERIFY
  CHECK(first("tls.connect") < first("verify ") && first("verify ") < first("mqtt.connect"));
#endif
  CHECK(has("mqtt.connect " ID " user=(null) pass=(null) will=devices/" ID
            "/status 1 1 offline clean=1"));
  CHECK(first("mqtt.connect") < first("subscribe devices/" ID "/set 1"));
  CHECK(first("subscribe") < first("publish devices/" ID "/status online retained"));
  CHECK(has("publish devices/" ID "/state {\"relay\":false} retained"));
  CHECK(has("publish devices/" ID "/telemetry {\"uptime_s\":"));
  CHECK(printed("MQTT connected"));
  CHECK(printed("Listening on devices/" ID "/set"));

  // Commands.
  struct Case {
    const char* payload;
    int relay;
    bool valid;
  };
  const Case cases[] = {
      {"ON", HIGH, true},
      {"toggle \r\n", LOW, true},
      {" {\"relay\": true} ", HIGH, true},
      {"{\"relay\":false}", LOW, true},
      {"TOGGLE", HIGH, true},
      {"nonsense", HIGH, false},
      {"{\"relayx\":false}", HIGH, false},
      {"{\"relay\":falsey}", HIGH, false},
      {"{\"relay\" : false , \"x\":1}", LOW, true},
      {"{\"other\":1,\"relay\":true}", HIGH, true},
      {"", HIGH, false},
      {"off", LOW, true},
  };
  for (const Case& c : cases) {
    fake::events.clear();
    fake::serial.clear();
    deliver("devices/" ID "/set", c.payload);
    CHECK(printed(std::string("Message arrived [devices/" ID "/set] ") + c.payload + "\n"));
    step(10);
    if (fake::pins[RELAY] != c.relay || fake::pins[LED] != c.relay) {
      fprintf(stderr, "payload %s: relay %d led %d, want %d\n", c.payload, fake::pins[RELAY],
              fake::pins[LED], c.relay);
      failures++;
    }
    const std::string state = std::string("publish devices/" ID "/state {\"relay\":") +
                              (c.relay ? "true" : "false") + "} retained";
    if (c.valid) {
      CHECK(count(state) == 1);
    } else {
      CHECK(!has("publish devices/" ID "/state"));
      CHECK(printed("ignored"));
    }
  }

  // Telemetry every 60 s.
  fake::events.clear();
  step(60000);
  CHECK(count("publish devices/" ID "/telemetry") == 1);
  CHECK(has("publish devices/" ID "/telemetry {\"uptime_s\":") &&
        fake::events.back().find("\"rssi\":-61,\"free_heap\":30000}") != std::string::npos);
  step(1000);
  CHECK(count("publish devices/" ID "/telemetry") == 1);

  // Connection lost, broker unreachable: one attempt when due, never a wait in loop().
  fake::mqtt_up = false;
  fake::mqtt_state = MQTT_CONNECTION_LOST;
  fake::tls_ok = false;
  fake::events.clear();
  fake::serial.clear();
  step(10);
  CHECK(printed("MQTT disconnected: connection lost (state -3)"));
  CHECK(count("tls.connect") == 1);
  CHECK(printed("TLS connection to broker.example.com:8883 failed"));
  const unsigned long waits[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  size_t attempts = 1;
  for (unsigned long w : waits) {
    CHECK(printed("Next attempt in " + std::to_string(w) + " ms"));
    step(w - 1);
    CHECK(count("tls.connect") == attempts);
    step(1);
    attempts++;
    CHECK(count("tls.connect") == attempts);
  }

  // TLS fine, MQTT refused: the reason in words, the socket closed.
  fake::tls_ok = true;
  fake::mqtt_ok = false;
  fake::serial.clear();
  step(60000);
  CHECK(printed("MQTT connect failed: bad user name or password (secrets.h) (state 4)"));
  CHECK(has("tls.stop"));

  // Back: subscribed again, and the next failure waits 1 s again.
  fake::mqtt_ok = true;
  fake::events.clear();
  step(60000);
  CHECK(has("subscribe devices/" ID "/set 1"));
  CHECK(has("publish devices/" ID "/status online retained"));
  CHECK(has("publish devices/" ID "/state {\"relay\":false} retained"));
  fake::mqtt_up = false;
  fake::mqtt_state = MQTT_CONNECTION_TIMEOUT;
  fake::tls_ok = false;
  fake::serial.clear();
  step(10);
  CHECK(printed("MQTT disconnected: no answer from the broker (state -4)"));
  CHECK(printed("Next attempt in 1000 ms"));

#if TERN_VERIFY
  // A certificate other than the pinned one: refused before MQTT.
  fake::tls_ok = true;
  fake::verify_ok = false;
  fake::events.clear();
  fake::serial.clear();
  step(1000);
  CHECK(has("verify "));
  CHECK(has("tls.stop"));
  CHECK(!has("mqtt.connect"));
  CHECK(printed("not the pinned one"));
#endif

  if (failures) {
    fprintf(stderr, "%d checks failed\n--- last events ---\n", failures);
    for (const auto& e : fake::events) fprintf(stderr, "%s\n", e.c_str());
    fprintf(stderr, "--- last serial output ---\n%s\n", fake::serial.c_str());
    return 1;
  }
  printf("all checks passed\n");
  return 0;
}
