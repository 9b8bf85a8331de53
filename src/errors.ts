// Every error a client can see, with its stable code and HTTP status. Tests assert codes, not messages.
export const ERRORS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  transfer_not_found: 404,
  ticket_not_found: 404,
  unknown_desk: 400,
  same_desk: 400,
  unknown_switch: 400,
  call_already_transferring: 409,
  cannot_cancel: 409,
  idempotency_key_reused: 422,
  payload_too_large: 413,
  uri_too_long: 414,
  unsupported_media_type: 415,
  switch_unavailable: 503,
  store_unavailable: 503,
  shutting_down: 503,
  internal_error: 500,
  // The linkage policy (src/policy): the routing list refuses, redirects, feedback.
  category_owned_elsewhere: 422,
  category_redirected: 422,
  category_unlisted: 422,
  danger_already_at_emergency_desk: 422,
  unknown_category: 404,
  not_a_redirect: 422,
  feedback_without_transfer: 404,
} as const;

export type ErrorCode = keyof typeof ERRORS;

/** An operational failure with a stable code; anything else reaching the error handler is a bug. */
export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERRORS[code];
  }
}
