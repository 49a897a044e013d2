// Host definitions for everything the stub headers declare and a generated sketch uses,
// recording calls in fake::events. Single connection: the TLS client and PubSubClient
// keep their state in namespace fake. Not a simulator of TLS or MQTT: just enough to run
// setup()/loop() and watch what the sketch does.
#include <Arduino.h>
#ifdef ESP8266
#include <ESP8266WiFi.h>
#else
#include <WiFi.h>
#include <NetworkClientSecure.h>
#endif
#include <PubSubClient.h>
#include <stdarg.h>

#include "fake.h"

namespace fake {
unsigned long now_ms = 0;
time_t wall = 0;
bool wifi_up = false;
bool tls_ok = true;
bool mqtt_ok = true;
bool mqtt_up = false;
bool verify_ok = true;
int mqtt_state = MQTT_DISCONNECTED;
std::string serial;
std::vector<std::string> events;
std::map<int, int> pins;
std::function<void(char*, uint8_t*, unsigned int)> callback;

static void event(const std::string& e) { events.push_back(e); }
static std::string str(const char* s) { return s ? s : "(null)"; }
}  // namespace fake

extern "C" time_t time(time_t* t) noexcept {
  if (t) *t = fake::wall;
  return fake::wall;
}

// ---- Arduino core --------------------------------------------------------------------
void pinMode(uint8_t pin, uint8_t mode) {
  fake::event("pinMode " + std::to_string(pin) + " " + std::to_string(mode));
}
void digitalWrite(uint8_t pin, uint8_t val) { fake::pins[pin] = val; }
unsigned long millis() { return fake::now_ms; }
unsigned long micros() { return fake::now_ms * 1000UL; }
long random(long) { return 0; }
void randomSeed(unsigned long) {}
#ifdef ESP8266
void configTime(int timezone, int daylightOffset_sec, const char* server1, const char* server2,
                const char*) {
  fake::event("configTime " + std::to_string(timezone) + " " + std::to_string(daylightOffset_sec) +
              " " + fake::str(server1) + " " + fake::str(server2));
}
#else
extern "C" void configTime(long gmtOffset_sec, int daylightOffset_sec, const char* server1,
                           const char* server2, const char*) {
  fake::event("configTime " + std::to_string(gmtOffset_sec) + " " +
              std::to_string(daylightOffset_sec) + " " + fake::str(server1) + " " +
              fake::str(server2));
}
#endif

String::String(const char*) {}
String::String(const String&) {}
String::~String() {}
String& String::operator=(const String&) { return *this; }
const char* String::c_str() const { return "10.0.0.2"; }
unsigned int String::length() const { return 8; }

size_t Print::write(const uint8_t* buffer, size_t size) {
  size_t n = 0;
  while (size--) n += write(*buffer++);
  return n;
}
size_t Print::write(const char* str) { return write((const uint8_t*)str, strlen(str)); }
size_t Print::printf(const char* format, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, format);
  vsnprintf(buf, sizeof(buf), format, ap);
  va_end(ap);
  return write(buf);
}
size_t Print::print(const char s[]) { return write(s); }
size_t Print::println(const char s[]) { return write(s) + println(); }
size_t Print::println(void) { return write("\n"); }

void HardwareSerial::begin(unsigned long) {}
int HardwareSerial::available() { return 0; }
int HardwareSerial::peek() { return -1; }
int HardwareSerial::read() { return -1; }
size_t HardwareSerial::write(uint8_t c) {
  fake::serial.push_back((char)c);
  return 1;
}
size_t HardwareSerial::write(const uint8_t* buffer, size_t size) {
  fake::serial.append((const char*)buffer, size);
  return size;
}
HardwareSerial Serial;

IPAddress::IPAddress() {}
bool IPAddress::fromString(const char* address) {
  fake::event(std::string("IPAddress::fromString ") + address);
  return true;
}
String IPAddress::toString() const { return String(); }
size_t IPAddress::printTo(Print& p) const { return p.write("10.0.0.2"); }

EspClass ESP;
uint32_t EspClass::getFreeHeap() { return 30000; }
#ifdef ESP8266
uint32_t EspClass::getChipId() { return 0xa1b2c3; }
#else
uint64_t EspClass::getEfuseMac() { return 0x0000C3B2A1000000ULL; }
#endif

// ---- Wi-Fi and TLS -------------------------------------------------------------------
static int tls_connect(const std::string& where) {
  fake::event("tls.connect " + where);
  return fake::tls_ok ? 1 : 0;
}

#ifdef ESP8266
ESP8266WiFiClass WiFi;
bool ESP8266WiFiClass::mode(WiFiMode_t m, WiFiState*) {
  fake::event("WiFi.mode " + std::to_string((int)m));
  return true;
}
wl_status_t ESP8266WiFiClass::begin(const char* ssid, const char* passphrase, int32_t,
                                    const uint8_t*, bool) {
  fake::event("WiFi.begin " + fake::str(ssid) + " " + fake::str(passphrase));
  return WL_DISCONNECTED;
}
wl_status_t ESP8266WiFiClass::status() { return fake::wifi_up ? WL_CONNECTED : WL_DISCONNECTED; }
IPAddress ESP8266WiFiClass::localIP() { return IPAddress(); }
int8_t ESP8266WiFiClass::RSSI() { return -61; }

WiFiClient::WiFiClient() {}
WiFiClient::~WiFiClient() {}
int WiFiClient::connect(IPAddress, uint16_t) { return 0; }
int WiFiClient::connect(const char*, uint16_t) { return 0; }
int WiFiClient::connect(const String&, uint16_t) { return 0; }
size_t WiFiClient::write(uint8_t) { return 1; }
size_t WiFiClient::write(const uint8_t*, size_t size) { return size; }
int WiFiClient::available() { return 0; }
int WiFiClient::read() { return -1; }
int WiFiClient::read(uint8_t*, size_t) { return 0; }
int WiFiClient::peek() { return -1; }
void WiFiClient::flush() {}
void WiFiClient::stop() {}
uint8_t WiFiClient::connected() { return 0; }
WiFiClient::operator bool() { return false; }

namespace BearSSL {
X509List::X509List(const char*) { fake::event("X509List"); }
X509List::~X509List() {}
PublicKey::PublicKey(const char*) { fake::event("PublicKey"); }
PublicKey::~PublicKey() {}
PrivateKey::PrivateKey(const char*) { fake::event("PrivateKey"); }
PrivateKey::~PrivateKey() {}
Session::Session() {}

WiFiClientSecure::WiFiClientSecure() {}
WiFiClientSecure::WiFiClientSecure(const WiFiClientSecure& rhs) : WiFiClient(rhs) {}
WiFiClientSecure::~WiFiClientSecure() {}
int WiFiClientSecure::connect(IPAddress, uint16_t port) {
  return tls_connect("<ip>:" + std::to_string(port));
}
int WiFiClientSecure::connect(const String&, uint16_t) { return 0; }
int WiFiClientSecure::connect(const char* name, uint16_t port) {
  return tls_connect(fake::str(name) + ":" + std::to_string(port));
}
uint8_t WiFiClientSecure::connected() { return fake::mqtt_up; }
size_t WiFiClientSecure::write(const uint8_t*, size_t size) { return size; }
size_t WiFiClientSecure::write(uint8_t) { return 1; }
int WiFiClientSecure::read(uint8_t*, size_t) { return 0; }
int WiFiClientSecure::available() { return 0; }
int WiFiClientSecure::read() { return -1; }
int WiFiClientSecure::peek() { return -1; }
void WiFiClientSecure::flush() {}
void WiFiClientSecure::stop() { fake::event("tls.stop"); }
void WiFiClientSecure::setSession(Session*) { fake::event("setSession"); }
void WiFiClientSecure::setKnownKey(const PublicKey*, unsigned) { fake::event("setKnownKey"); }
bool WiFiClientSecure::setFingerprint(const uint8_t[20]) {
  fake::event("setFingerprint");
  return true;
}
void WiFiClientSecure::setTrustAnchors(const X509List*) { fake::event("setTrustAnchors"); }
void WiFiClientSecure::setClientRSACert(const X509List*, const PrivateKey*) {
  fake::event("setClientRSACert");
}
void WiFiClientSecure::setClientECCert(const X509List*, const PrivateKey*, unsigned usages,
                                       unsigned issuer) {
  fake::event("setClientECCert " + std::to_string(usages) + " " + std::to_string(issuer));
}
void WiFiClientSecure::setBufferSizes(int recv, int xmit) {
  fake::event("setBufferSizes " + std::to_string(recv) + " " + std::to_string(xmit));
}
int WiFiClientSecure::getLastSSLError(char* dest, size_t len) {
  snprintf(dest, len, "certificate is not trusted");
  return -1;
}
bool WiFiClientSecure::probeMaxFragmentLength(IPAddress, uint16_t, uint16_t len) {
  fake::event("probeMaxFragmentLength <ip> " + std::to_string(len));
  return false;
}
bool WiFiClientSecure::probeMaxFragmentLength(const char* hostname, uint16_t, uint16_t len) {
  fake::event("probeMaxFragmentLength " + fake::str(hostname) + " " + std::to_string(len));
  return false;
}
}  // namespace BearSSL
#else
WiFiClass WiFi;
bool WiFiClass::mode(wifi_mode_t m) {
  fake::event("WiFi.mode " + std::to_string((int)m));
  return true;
}
wl_status_t WiFiClass::begin(const char* ssid, const char* passphrase, int32_t, const uint8_t*,
                             bool) {
  fake::event("WiFi.begin " + fake::str(ssid) + " " + fake::str(passphrase));
  return WL_DISCONNECTED;
}
wl_status_t WiFiClass::status() { return fake::wifi_up ? WL_CONNECTED : WL_DISCONNECTED; }
IPAddress WiFiClass::localIP() { return IPAddress(); }
int8_t WiFiClass::RSSI() { return -61; }

NetworkClient::NetworkClient() {}
NetworkClient::~NetworkClient() {}
int NetworkClient::connect(IPAddress, uint16_t) { return 0; }
int NetworkClient::connect(const char*, uint16_t) { return 0; }
size_t NetworkClient::write(uint8_t) { return 1; }
size_t NetworkClient::write(const uint8_t*, size_t size) { return size; }
int NetworkClient::available() { return 0; }
int NetworkClient::read() { return -1; }
int NetworkClient::read(uint8_t*, size_t) { return 0; }
int NetworkClient::peek() { return -1; }
void NetworkClient::flush() {}
void NetworkClient::stop() {}
uint8_t NetworkClient::connected() { return 0; }
NetworkClient::operator bool() { return false; }

NetworkClientSecure::NetworkClientSecure() {}
NetworkClientSecure::~NetworkClientSecure() {}
int NetworkClientSecure::connect(IPAddress, uint16_t port) {
  return tls_connect("<ip>:" + std::to_string(port));
}
int NetworkClientSecure::connect(const char* host, uint16_t port) {
  return tls_connect(fake::str(host) + ":" + std::to_string(port));
}
int NetworkClientSecure::peek() { return -1; }
size_t NetworkClientSecure::write(uint8_t) { return 1; }
size_t NetworkClientSecure::write(const uint8_t*, size_t size) { return size; }
int NetworkClientSecure::available() { return 0; }
int NetworkClientSecure::read() { return -1; }
int NetworkClientSecure::read(uint8_t*, size_t) { return 0; }
void NetworkClientSecure::stop() { fake::event("tls.stop"); }
uint8_t NetworkClientSecure::connected() { return fake::mqtt_up; }
int NetworkClientSecure::lastError(char* buf, const size_t size) {
  snprintf(buf, size, "X509 - Certificate verification failed");
  return -0x2700;
}
void NetworkClientSecure::setCACert(const char*) { fake::event("setCACert"); }
void NetworkClientSecure::setCertificate(const char*) { fake::event("setCertificate"); }
void NetworkClientSecure::setPrivateKey(const char*) { fake::event("setPrivateKey"); }
bool NetworkClientSecure::verify(const char* fingerprint, const char* domain_name) {
  fake::event("verify " + fake::str(fingerprint) + " " + fake::str(domain_name));
  return fake::verify_ok;
}
#endif

// ---- PubSubClient ---------------------------------------------------------------------
PubSubClient::PubSubClient(Client&) {}
PubSubClient::~PubSubClient() {}
PubSubClient& PubSubClient::setServer(const char* domain, uint16_t port) {
  fake::event("mqtt.setServer " + fake::str(domain) + ":" + std::to_string(port));
  return *this;
}
PubSubClient& PubSubClient::setCallback(MQTT_CALLBACK_SIGNATURE) {
  fake::callback = callback;
  fake::event("mqtt.setCallback");
  return *this;
}
PubSubClient& PubSubClient::setKeepAlive(uint16_t keepAlive) {
  fake::event("mqtt.setKeepAlive " + std::to_string(keepAlive));
  return *this;
}
PubSubClient& PubSubClient::setSocketTimeout(uint16_t timeout) {
  fake::event("mqtt.setSocketTimeout " + std::to_string(timeout));
  return *this;
}
boolean PubSubClient::setBufferSize(uint16_t size) {
  fake::event("mqtt.setBufferSize " + std::to_string(size));
  return true;
}
boolean PubSubClient::connect(const char* id, const char* user, const char* pass,
                              const char* willTopic, uint8_t willQos, boolean willRetain,
                              const char* willMessage, boolean cleanSession) {
  fake::event("mqtt.connect " + fake::str(id) + " user=" + fake::str(user) +
              " pass=" + fake::str(pass) + " will=" + fake::str(willTopic) + " " +
              std::to_string(willQos) + " " + std::to_string(willRetain) + " " +
              fake::str(willMessage) + " clean=" + std::to_string(cleanSession));
  fake::mqtt_up = fake::mqtt_ok;
  fake::mqtt_state = fake::mqtt_ok ? MQTT_CONNECTED : MQTT_CONNECT_BAD_CREDENTIALS;
  return fake::mqtt_ok;
}
boolean PubSubClient::publish(const char* topic, const char* payload) {
  return publish(topic, payload, false);
}
boolean PubSubClient::publish(const char* topic, const char* payload, boolean retained) {
  fake::event("publish " + fake::str(topic) + " " + fake::str(payload) +
              (retained ? " retained" : ""));
  return fake::mqtt_up;
}
boolean PubSubClient::subscribe(const char* topic, uint8_t qos) {
  fake::event("subscribe " + fake::str(topic) + " " + std::to_string(qos));
  return true;
}
boolean PubSubClient::loop() { return fake::mqtt_up; }
boolean PubSubClient::connected() { return fake::mqtt_up; }
int PubSubClient::state() { return fake::mqtt_state; }
size_t PubSubClient::write(uint8_t) { return 1; }
size_t PubSubClient::write(const uint8_t*, size_t size) { return size; }
