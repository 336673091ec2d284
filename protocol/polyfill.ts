/**
 * Promise.withResolvers polyfill for Node 20.
 *
 * libp2p v3 (its stream utilities, yamux, it-queue, mortice) calls Promise.withResolvers, which
 * Node ships only from 22. Without it the Noise handshake fails with a misleading ECONNRESET.
 * Every process entry point (CLI, daemon, tests) imports this module first. On Node 22+ it is a
 * no-op. It does no I/O, so it may live in the pure protocol package.
 */
interface Resolvers<T> {
  promise: Promise<T>
  resolve: (v: T | PromiseLike<T>) => void
  reject: (e?: unknown) => void
}
const P = Promise as unknown as { withResolvers?: <T>() => Resolvers<T> }
P.withResolvers ??= function <T> (): Resolvers<T> {
  let resolve!: (v: T | PromiseLike<T>) => void
  let reject!: (e?: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}
export {}
