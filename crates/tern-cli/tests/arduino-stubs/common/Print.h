// Print, Printable, String and IPAddress as the ESP8266 and ESP32 cores declare them
// (cores/*/Print.h, Printable.h, WString.h, IPAddress.h), trimmed to the overloads
// sketches use. Declarations only.
#pragma once
#include <stddef.h>
#include <stdint.h>

class __FlashStringHelper;

class String {
 public:
  String(const char* cstr = "");
  String(const String& str);
  ~String();
  String& operator=(const String& rhs);
  unsigned int length() const;
  const char* c_str() const;
};

class Print;

class Printable {
 public:
  virtual ~Printable() {}
  virtual size_t printTo(Print& p) const = 0;
};

class Print {
 public:
  virtual ~Print() {}
  virtual size_t write(uint8_t) = 0;
  size_t write(const char* str);
  virtual size_t write(const uint8_t* buffer, size_t size);
  size_t write(const char* buffer, size_t size);

  size_t printf(const char* format, ...) __attribute__((format(printf, 2, 3)));
  size_t print(const __FlashStringHelper*);
  size_t print(const String&);
  size_t print(const char[]);
  size_t print(char);
  size_t print(unsigned char, int = 10);
  size_t print(int, int = 10);
  size_t print(unsigned int, int = 10);
  size_t print(long, int = 10);
  size_t print(unsigned long, int = 10);
  size_t print(double, int = 2);
  size_t print(const Printable&);

  size_t println(const __FlashStringHelper*);
  size_t println(const String& s);
  size_t println(const char[]);
  size_t println(char);
  size_t println(unsigned char, int = 10);
  size_t println(int, int = 10);
  size_t println(unsigned int, int = 10);
  size_t println(long, int = 10);
  size_t println(unsigned long, int = 10);
  size_t println(double, int = 2);
  size_t println(const Printable&);
  size_t println(void);
};

class Stream : public Print {
 public:
  virtual int available() = 0;
  virtual int read() = 0;
  virtual int peek() = 0;
  void setTimeout(unsigned long timeout);
};

class IPAddress : public Printable {
 public:
  IPAddress();
  IPAddress(uint8_t first_octet, uint8_t second_octet, uint8_t third_octet, uint8_t fourth_octet);
  IPAddress(uint32_t address);
  bool fromString(const char* address);
  String toString() const;
  size_t printTo(Print& p) const override;
};

class HardwareSerial : public Stream {
 public:
  void begin(unsigned long baud);
  void end();
  int available(void) override;
  int peek(void) override;
  int read(void) override;
  size_t write(uint8_t) override;
  size_t write(const uint8_t* buffer, size_t size) override;
  using Print::write;
  void setDebugOutput(bool);
};

extern HardwareSerial Serial;
