import Bowser from 'bowser';

/** Longer labels are cut: the label is stored in every session record (1.2 KiB budget) and shown as is. */
export const MAX_DEVICE_LABEL_LENGTH = 48;

/**
 * A short, human label for the device a session was created on, such as
 * "Firefox 133 on Linux", for the user's list of their own sessions. Parsed
 * with bowser (a maintained User-Agent database) rather than hand-written
 * patterns, and kept instead of the User-Agent itself: a full User-Agent is
 * 100-300 bytes of every record, and more identifying than a user needs to
 * recognise a device. Undefined when nothing recognisable is left.
 */
export function deviceLabelOf(userAgent: string | undefined): string | undefined {
  if (!userAgent) return undefined;
  const parsed = Bowser.parse(userAgent.slice(0, 512));
  const browser = [printable(parsed.browser.name), majorVersion(parsed.browser.version)].filter(Boolean).join(' ');
  const os = printable(parsed.os.name);
  const label = browser && os ? `${browser} on ${os}` : browser || os;
  return label ? label.slice(0, MAX_DEVICE_LABEL_LENGTH) : undefined;
}

/** "133.0.1" -> "133": the minor versions change every few weeks and say nothing to a user. */
function majorVersion(version: string | undefined): string | undefined {
  const major = /^\d{1,5}/.exec(version ?? '')?.[0];
  return major;
}

/** The User-Agent is the client's to write: nothing but printable text of modest length reaches a record. */
function printable(text: string | undefined): string | undefined {
  const cleaned = text?.replace(/[^\p{L}\p{N} .()_+-]/gu, '').trim();
  return cleaned ? cleaned.slice(0, 32) : undefined;
}
