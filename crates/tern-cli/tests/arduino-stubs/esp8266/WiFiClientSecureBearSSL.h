// esp8266/Arduino libraries/ESP8266WiFi/src/WiFiClientSecureBearSSL.h: the public API of
// BearSSL::WiFiClientSecure, with the real signatures. Declarations only, except the
// trivially inline setters, which are declared (not defined) here on purpose.
#ifndef wificlientbearssl_h
#define wificlientbearssl_h

#include "WiFiClient.h"
#include "BearSSLHelpers.h"

namespace BearSSL {

class WiFiClientSecure : public WiFiClient {
 public:
  WiFiClientSecure();
  WiFiClientSecure(const WiFiClientSecure& rhs);
  ~WiFiClientSecure() override;

  int connect(IPAddress ip, uint16_t port) override;
  int connect(const String& host, uint16_t port) override;
  int connect(const char* name, uint16_t port) override;

  uint8_t connected() override;
  size_t write(const uint8_t* buf, size_t size) override;
  size_t write(uint8_t b) override;
  int read(uint8_t* buf, size_t size) override;
  int available() override;
  int read() override;
  int peek() override;
  bool flush(unsigned int maxWaitMs);
  bool stop(unsigned int maxWaitMs);
  void flush() override;
  void stop() override;

  // Allow sessions to be saved/restored automatically to a memory area
  void setSession(Session* session);

  // Don't validate the chain, just accept whatever is given.  VERY INSECURE!
  void setInsecure();
  // Assume a given public key, don't validate or use cert info at all
  void setKnownKey(const PublicKey* pk, unsigned usages = BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
  // Only check SHA1 fingerprint of certificate
  bool setFingerprint(const uint8_t fingerprint[20]);
  bool setFingerprint(const char* fpStr);
  // Accept any certificate that's self-signed
  void allowSelfSignedCerts();
  // Install certificates of trusted CAs or specific site
  void setTrustAnchors(const X509List* ta);
  // In cases when NTP is not used, app must set a time manually to check cert validity
  void setX509Time(time_t now);
  // Install a client certificate for this connection, in case the server requires it (i.e. MQTT)
  void setClientRSACert(const X509List* cert, const PrivateKey* sk);
  void setClientECCert(const X509List* cert, const PrivateKey* sk, unsigned allowed_usages,
                       unsigned cert_issuer_key_type);

  // Sets the requested buffer size for transmit and receive
  void setBufferSizes(int recv, int xmit);

  // Returns whether MFLN negotiation for the above buffer sizes succeeded (after connection)
  int getMFLNStatus();

  // Return an error code and possibly a text string in a passed-in buffer with last SSL failure
  int getLastSSLError(char* dest = NULL, size_t len = 0);

  // Select specific ciphers (i.e. optimize for speed over security)
  bool setCiphers(const uint16_t* cipherAry, int cipherCount);
  bool setCiphersLessSecure();

  // Check for Maximum Fragment Length support for given len before connection (possibly insecure)
  static bool probeMaxFragmentLength(IPAddress ip, uint16_t port, uint16_t len);
  static bool probeMaxFragmentLength(const char* hostname, uint16_t port, uint16_t len);
  static bool probeMaxFragmentLength(const String& host, uint16_t port, uint16_t len);
};

};  // namespace BearSSL

#endif
