// arduino-esp32 3.x libraries/NetworkClientSecure/src/NetworkClientSecure.h: the public API
// of NetworkClientSecure, with the real signatures. Declarations only.
#ifndef NetworkClientSecure_h
#define NetworkClientSecure_h
#include "Arduino.h"
#include "WiFi.h"

class NetworkClientSecure : public NetworkClient {
 public:
  NetworkClientSecure();
  NetworkClientSecure(int socket);
  ~NetworkClientSecure();
  int connect(IPAddress ip, uint16_t port) override;
  int connect(IPAddress ip, uint16_t port, int32_t timeout);
  int connect(const char* host, uint16_t port) override;
  int connect(const char* host, uint16_t port, int32_t timeout);
  int connect(IPAddress ip, uint16_t port, const char* rootCABuff, const char* cli_cert, const char* cli_key);
  int connect(const char* host, uint16_t port, const char* rootCABuff, const char* cli_cert, const char* cli_key);
  int connect(IPAddress ip, uint16_t port, const char* pskIdent, const char* psKey);
  int connect(const char* host, uint16_t port, const char* pskIdent, const char* psKey);
  int peek() override;
  size_t write(uint8_t data) override;
  size_t write(const uint8_t* buf, size_t size) override;
  int available() override;
  int read() override;
  int read(uint8_t* buf, size_t size) override;
  void flush() override {}
  void stop() override;
  uint8_t connected() override;
  int lastError(char* buf, const size_t size);
  void setInsecure();  // Don't validate the chain, just accept whatever is given.  VERY INSECURE!
  void setPreSharedKey(const char* pskIdent, const char* psKey);  // psKey in Hex
  void setCACert(const char* rootCA);
  void setCertificate(const char* client_ca);
  void setPrivateKey(const char* private_key);
  bool loadCACert(Stream& stream, size_t size);
  void setCACertBundle(const uint8_t* bundle, size_t size);
  bool loadCertificate(Stream& stream, size_t size);
  bool loadPrivateKey(Stream& stream, size_t size);
  bool verify(const char* fingerprint, const char* domain_name);
  void setHandshakeTimeout(unsigned long handshake_timeout);
  void setAlpnProtocols(const char** alpn_protos);
  bool setCiphers(const int* list, size_t count);
  void useBuiltinCACertBundle();
  bool getFingerprintSHA256(uint8_t sha256_result[32]);
};

#endif
