// arduino-esp32 3.x (espressif/arduino-esp32 cores/esp32/Arduino.h, esp32-hal.h,
// esp32-hal-gpio.h, Esp.h, pgmspace.h), trimmed to what sketches use. Declarations only.
#ifndef Arduino_h
#define Arduino_h

#include <stdlib.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HIGH 0x1
#define LOW  0x0

#define INPUT             0x01
#define OUTPUT            0x03
#define INPUT_PULLUP      0x05

#define PROGMEM
#define PGM_P const char *
#define PGM_VOID_P const void *

typedef bool boolean;
typedef uint8_t byte;

extern "C" {
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t val);
int digitalRead(uint8_t pin);
unsigned long micros();
unsigned long millis();
void delay(uint32_t);
void yield(void);
}

void setup(void);
void loop(void);

long random(long);
long random(long, long);
void randomSeed(unsigned long);

extern "C" bool getLocalTime(struct tm* info, uint32_t ms = 5000);
extern "C" void configTime(long gmtOffset_sec, int daylightOffset_sec, const char* server1,
                           const char* server2 = nullptr, const char* server3 = nullptr);
extern "C" void configTzTime(const char* tz, const char* server1,
                             const char* server2 = nullptr, const char* server3 = nullptr);

#include "Print.h"

class EspClass {
 public:
  void restart();
  uint32_t getHeapSize();
  uint32_t getFreeHeap();
  uint32_t getMinFreeHeap();
  uint32_t getMaxAllocHeap();
  uint64_t getEfuseMac();
};

extern EspClass ESP;

#endif
