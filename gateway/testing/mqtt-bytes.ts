/** MQTT bytes written by hand, for tests and the attack benchmark that must send what no client would. */

/** A fixed header [MQTT-2.2]: the packet type in the high nibble and its flags, then the Remaining Length, 7 bits a byte, low first [MQTT-2.2.3]. */
export function fixedHeader(type: number, remainingLength: number, flags = 0): Buffer {
  const bytes = [(type << 4) | flags];
  let n = remainingLength;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}
