import * as client from 'openid-client';

/** 4xx answers and failed validations: the request was refused, the IdP itself is healthy. */
export function isProtocolRefusal(error: unknown): boolean {
  if (error instanceof client.ResponseBodyError) return error.status < 500;
  if (error instanceof client.AuthorizationResponseError) return true;
  // openid-client reads error bodies of 4xx only: a 5xx arrives as a non-conform response carrying the Response.
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof Response && cause.status >= 500) return false;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('OAUTH_') && code !== 'OAUTH_RESPONSE_IS_NOT_JSON';
}

export function isInvalidGrant(error: unknown): boolean {
  return error instanceof client.ResponseBodyError && error.error === 'invalid_grant';
}

/**
 * What the sign-in page may say. OAuth error codes are shown when they look
 * like one; openid-client's own message (which quotes the response it
 * rejected) stays in the error's cause, for the log.
 */
export function describeLoginFailure(error: unknown): string {
  const code = (error as { error?: unknown } | null)?.error;
  const oauthCode = typeof code === 'string' && /^[a-z_]{1,64}$/.test(code) ? code : 'an error';
  if (error instanceof client.AuthorizationResponseError) return `the identity provider answered ${oauthCode}`;
  if (error instanceof client.ResponseBodyError) return `the identity provider refused the code (${oauthCode})`;
  return 'the login response failed validation';
}
