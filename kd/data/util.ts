// Small environment-free helpers shared by the data pipeline.

/** Milliseconds since an arbitrary origin (monotonic). */
export const nowMs = (): number => performance.now();
