// esp8266/Arduino libraries/ESP8266WiFi/src/BearSSLHelpers.h, and the BR_KEYTYPE_* values
// of BearSSL's bearssl_x509.h. Declarations only.
#ifndef _BEARSSLHELPERS_H
#define _BEARSSLHELPERS_H

#include <Arduino.h>

#define BR_KEYTYPE_RSA    1
#define BR_KEYTYPE_EC     2
#define BR_KEYTYPE_KEYX   0x10
#define BR_KEYTYPE_SIGN   0x20

namespace BearSSL {

class PublicKey {
 public:
  PublicKey();
  PublicKey(const char* pemKey);
  PublicKey(const uint8_t* derKey, size_t derLen);
  ~PublicKey();
  bool parse(const char* pemKey);
  bool parse(const uint8_t* derKey, size_t derLen);
  bool isRSA() const;
  bool isEC() const;
  PublicKey(const PublicKey& that) = delete;
};

class PrivateKey {
 public:
  PrivateKey();
  PrivateKey(const char* pemKey);
  PrivateKey(const uint8_t* derKey, size_t derLen);
  ~PrivateKey();
  bool parse(const char* pemKey);
  bool parse(const uint8_t* derKey, size_t derLen);
  bool isRSA() const;
  bool isEC() const;
  PrivateKey(const PrivateKey& that) = delete;
};

class X509List {
 public:
  X509List();
  X509List(const char* pemCert);
  X509List(const uint8_t* derCert, size_t derLen);
  ~X509List();
  bool append(const char* pemCert);
  bool append(const uint8_t* derCert, size_t derLen);
  size_t getCount() const;
  X509List(const X509List& that) = delete;
};

class WiFiClientSecure;

class Session {
  friend class WiFiClientSecure;

 public:
  Session();
};

};  // namespace BearSSL

#endif
