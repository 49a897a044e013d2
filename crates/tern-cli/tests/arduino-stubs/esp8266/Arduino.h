// ESP8266 Arduino core 3.x (esp8266/Arduino cores/esp8266/Arduino.h, Esp.h, pgmspace.h),
// trimmed to what sketches use. Declarations only.
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

#define INPUT             0x00
#define INPUT_PULLUP      0x02
#define OUTPUT            0x01

#define PROGMEM
#define PGM_P const char *
#define PGM_VOID_P const void *
#define LED_BUILTIN 2

typedef bool boolean;
typedef uint8_t byte;

extern "C" {
void pinMode(uint8_t pin, uint8_t mode);
void digitalWrite(uint8_t pin, uint8_t val);
int digitalRead(uint8_t pin);
unsigned long millis(void);
unsigned long micros(void);
void delay(unsigned long);
void yield(void);
void setup(void);
void loop(void);
}

long random(long);
long random(long, long);
void randomSeed(unsigned long);
long secureRandom(long);
long secureRandom(long, long);

// core 3.x (cores/esp8266/Arduino.h); 2.x had one extern "C" (long, int, ...) form.
void configTime(int timezone, int daylightOffset_sec, const char* server1,
                const char* server2 = nullptr, const char* server3 = nullptr);
void configTime(const char* tz, const char* server1,
                const char* server2 = nullptr, const char* server3 = nullptr);

#include "Print.h"

class EspClass {
 public:
  void reset();
  void restart();
  uint32_t getChipId();
  uint32_t getFreeHeap();
  uint16_t getMaxFreeBlockSize();
  uint8_t getHeapFragmentation();
};

extern EspClass ESP;

#endif
