// SPDX-License-Identifier: UNLICENSED
// Errors of the image build. The stable `code` is shared with the rest of the kit (CK_ERR_IMAGE,
// CK_ERR_IMAGE_INPUT_MISSING); `reason` tells callers and tests which image failure it was without
// parsing message text.
import { ConnectorError, type ErrorCode } from '../../shared/errors.js';

export type ImageFailure =
  | 'lock-invalid'
  | 'board-invalid'
  | 'input-missing'
  | 'input-tampered'
  | 'download-failed'
  | 'bad-signature'
  | 'not-in-sums'
  | 'ib-info-mismatch'
  | 'rootfs-too-big'
  | 'missing-package'
  | 'package-feed-missing'
  | 'mirror-unreadable'
  | 'package-conflict'
  | 'kmod-mismatch'
  | 'prereq-missing'
  | 'ib-failed'
  | 'image-missing'
  | 'image-checksum'
  | 'image-board'
  | 'image-layout'
  | 'overlay-invalid'
  | 'sea-failed'
  | 'host-tool-missing'
  | 'unsupported-series';

export class ImageError extends ConnectorError {
  override name = 'ImageError';
  constructor(
    readonly reason: ImageFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    const code: ErrorCode = reason === 'input-missing' ? 'CK_ERR_IMAGE_INPUT_MISSING' : 'CK_ERR_IMAGE';
    super(code, message, options);
  }
}

export const isImageFailure = (e: unknown, reason: ImageFailure): e is ImageError => e instanceof ImageError && e.reason === reason;
