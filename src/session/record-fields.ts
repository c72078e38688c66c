/*
 * The field encodings of a sealed session record (src/session/session-codec.ts
 * lays the fields out): LEB128 varints, length-prefixed UTF-8, tagged optional
 * fields, and JWTs stored as their decoded parts.
 */

/** How a token is stored; Jws: the compact serialisation with canonical base64url parts, stored decoded. */
const TokenEncoding = { Absent: 0, Text: 1, Jws: 2 } as const;

/** The three parts of a JWS whose base64url decodes and re-encodes to itself; undefined for anything else. */
function jwsParts(token: string): string[] | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  // Only a lossless round trip may be stored decoded: the token must come back byte for byte (signatures, id_token_hint).
  return parts.every((part) => Buffer.from(part, 'base64url').toString('base64url') === part) ? parts : undefined;
}

/** Writes into one growing buffer: a record is a few dozen fields, and a Buffer per field would cost more than the record. */
export class Writer {
  private buffer = Buffer.allocUnsafe(4096);
  private offset = 0;

  uint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a non-negative safe integer: ${value}`);
    this.reserve(8);
    let rest = value;
    while (rest >= 0x80) {
      this.buffer[this.offset++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.buffer[this.offset++] = rest;
  }

  /** Absent is 0, a value is itself + 1. */
  optionalUint(value: number | undefined): void {
    this.uint(value === undefined ? 0 : value + 1);
  }

  /** Length-prefixed; `lengthBias` 1 keeps length 0 free to mean "absent". */
  encoded(value: string, encoding: 'utf8' | 'base64url', lengthBias = 0): void {
    const length = Buffer.byteLength(value, encoding);
    this.uint(length + lengthBias);
    this.reserve(length);
    this.offset += this.buffer.write(value, this.offset, length, encoding);
  }

  text(value: string): void {
    this.encoded(value, 'utf8');
  }

  /** Absent is length 0; a value's length is stored + 1. */
  optionalText(value: string | undefined): void {
    if (value === undefined) this.uint(0);
    else this.encoded(value, 'utf8', 1);
  }

  /** An optional field after the tokens: nothing at all when absent. */
  tagged(tag: number, value: string | undefined): void {
    if (value === undefined) return;
    this.uint(tag);
    this.text(value);
  }

  token(value: string | undefined): void {
    if (value === undefined) return this.uint(TokenEncoding.Absent);
    const parts = jwsParts(value);
    if (!parts) {
      this.uint(TokenEncoding.Text);
      return this.text(value);
    }
    this.uint(TokenEncoding.Jws);
    for (const part of parts) this.encoded(part, 'base64url');
  }

  finish(): Buffer {
    return this.buffer.subarray(0, this.offset);
  }

  private reserve(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    const larger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.offset + bytes));
    this.buffer.copy(larger, 0, 0, this.offset);
    this.buffer = larger;
  }
}

export class Reader {
  private offset = 0;

  constructor(private readonly buffer: Buffer) {}

  uint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = this.buffer[this.offset++];
      if (byte === undefined || scale > 2 ** 49) throw new Error('a malformed session record');
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 0x80;
    }
  }

  optionalUint(): number | undefined {
    const value = this.uint();
    return value === 0 ? undefined : value - 1;
  }

  bytes(length = this.uint()): Buffer {
    const end = this.offset + length;
    if (end > this.buffer.length) throw new Error('a malformed session record');
    const bytes = this.buffer.subarray(this.offset, end);
    this.offset = end;
    return bytes;
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  optionalText(): string | undefined {
    const length = this.uint();
    return length === 0 ? undefined : this.bytes(length - 1).toString('utf8');
  }

  token(): string | undefined {
    const encoding = this.uint();
    if (encoding === TokenEncoding.Absent) return undefined;
    if (encoding === TokenEncoding.Text) return this.text();
    if (encoding !== TokenEncoding.Jws) throw new Error('a malformed session record');
    return `${this.bytes().toString('base64url')}.${this.bytes().toString('base64url')}.${this.bytes().toString('base64url')}`;
  }

  isAtEnd(): boolean {
    return this.offset === this.buffer.length;
  }
}
