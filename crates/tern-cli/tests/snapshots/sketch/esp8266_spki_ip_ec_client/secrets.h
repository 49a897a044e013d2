// secrets.h: Wi-Fi and broker credentials for esp8266_spki_ip_ec_client.ino.
// Keep this file out of version control (the .gitignore next to it lists it).
// tern device sketch never overwrites it, so your values survive regenerating the sketch.
#pragma once

#define WIFI_SSID "your-wifi-name"
#define WIFI_PASSWORD "your-wifi-password"

// The broker's user name and password (tern passwd / mosquitto_passwd on the broker).
// Leave both "" when the broker does not ask for them.
#define MQTT_USER ""
#define MQTT_PASSWORD ""
