import { BlockList, isIP, isIPv6 } from 'node:net';

/** Who may send X-Forwarded-*: everyone when TRUSTED_PROXIES is unset (see README, "Trusted proxies"). */
export class TrustedProxies {
  private readonly list: BlockList | undefined;

  constructor(cidrs: readonly string[] | undefined) {
    if (!cidrs) return;
    this.list = new BlockList();
    for (const cidr of cidrs) {
      const [address = '', bits] = cidr.split('/');
      const type = isIPv6(address) ? 'ipv6' : 'ipv4';
      this.list.addSubnet(address, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
    }
  }

  get isRestricted(): boolean {
    return this.list !== undefined;
  }

  isTrusted(remoteAddress: string | undefined): boolean {
    if (!this.list) return true;
    if (!remoteAddress) return false;
    const mapped = remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
    return this.list.check(mapped, isIPv6(mapped) ? 'ipv6' : 'ipv4');
  }

  /** The client as the nearest trusted proxy saw it: the right-most X-Forwarded-For entry. */
  clientAddress(forwardedFor: string | undefined, remoteAddress: string | undefined): string | undefined {
    if (!forwardedFor || !this.isTrusted(remoteAddress)) return remoteAddress;
    const last = forwardedFor.slice(forwardedFor.lastIndexOf(',') + 1).trim();
    // Only an address is believed: anything else would become a rate-limit key or an event field.
    return isIP(last) === 0 ? remoteAddress : last;
  }
}
