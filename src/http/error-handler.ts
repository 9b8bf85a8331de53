// One error shape for every failure: { error: { code, message, details? } }, with a stable code.
// 5xx details stay in the log; the client gets the code and a plain sentence.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, type ErrorCode } from '../errors.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

export function errorBody(code: ErrorCode, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: details ? { code, message, details } : { code, message } };
}

export function handleError(error: FastifyError | AppError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof AppError) {
    if (error.status >= 500) request.log.warn({ code: error.code, err: error.message }, 'request failed');
    return reply.status(error.status).send(errorBody(error.code, error.message, error.details));
  }
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((v) => ({
      field: fieldOf(error.validationContext, v.instancePath),
      message: v.message ?? 'invalid',
    }));
    const first = issues[0];
    return reply.status(400).send(
      errorBody('invalid_request', first ? `${first.field}: ${first.message}` : 'invalid request', {
        field: first?.field,
        issues,
      }),
    );
  }
  const status = (error as FastifyError).statusCode;
  if (status === 413) return reply.status(413).send(errorBody('payload_too_large', 'the request body is too large'));
  if (status === 414) return reply.status(414).send(errorBody('uri_too_long', 'a path parameter is too long'));
  if (status === 415) {
    return reply.status(415).send(errorBody('unsupported_media_type', 'send the body as application/json'));
  }
  if (status !== undefined && status >= 400 && status < 500) {
    // Fastify's own 4xx: malformed JSON, empty body, bad headers.
    return reply.status(400).send(errorBody('invalid_request', error.message));
  }
  request.log.error({ err: error }, 'unexpected error');
  return reply.status(500).send(errorBody('internal_error', 'internal error'));
}

function fieldOf(context: string | undefined, instancePath: string): string {
  const path = instancePath.replace(/^\//, '').split('/').filter(Boolean).join('.');
  if (context === 'body') return path || 'body';
  return path ? `${context ?? 'request'}.${path}` : (context ?? 'request');
}
