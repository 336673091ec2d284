/**
 * Known-answer vectors for FROST signing (docs/PROTOCOL.md §4.3).
 *
 * 1. RFC 9591 Appendix E.1, FROST(Ed25519, SHA-512): the values below are copied from the RFC
 *    (group secret/public key, polynomial coefficient, shares, nonce randomness, nonces,
 *    commitments, binding factors, signature shares, final signature) and must come out of our
 *    wrapper (frostCommitWithRng / frostSignShare / frostAggregate) unchanged.
 * 2. keymesh cases: a seeded 3-of-5 key set, encodings of commitments / commitment lists /
 *    signature shares, and the aggregate signature.
 * 3. Negative cases: a bad signature share must be blamed; malformed commitments rejected.
 */
import { concat, toHex, utf8 } from '../../../protocol/bytes.ts'
import { frostAggregate, frostCommitWithRng, frostSignShare, encodeSigningCommitment, encodeSigningCommitments } from '../../../protocol/frost.ts'
import { encodeScalar } from '../../../protocol/group.ts'
import type { KeySet, KeyShare } from '../../../protocol/keyset.ts'
import { seededDkg, drbg } from './dkg.ts'

/** RFC 9591 Appendix E.1 (FROST(Ed25519, SHA-512)), verbatim values. */
export const RFC9591_E1 = {
  name: 'RFC 9591 Appendix E.1 FROST(Ed25519, SHA-512)',
  rfc9591: true,
  valid: true,
  maxParticipants: 3,
  minParticipants: 2,
  participantList: [1, 3],
  groupSecretKey: '7b1c33d3f5291d85de664833beb1ad469f7fb6025a0ec78b3a790c6e13a98304',
  groupPublicKey: '15d21ccd7ee42959562fc8aa63224c8851fb3ec85a3faf66040d380fb9738673',
  message: '74657374',
  sharePolynomialCoefficients: ['178199860edd8c62f5212ee91eff1295d0d670ab4ed4506866bae57e7030b204'],
  participantShares: {
    1: '929dcc590407aae7d388761cddb0c0db6f5627aea8e217f4a033f2ec83d93509',
    3: 'd3cb090a075eb154e82fdb4b3cb507f110040905468bb9c46da8bdea643a9a02'
  },
  signers: {
    1: {
      hidingNonceRandomness: '0fd2e39e111cdc266f6c0f4d0fd45c947761f1f5d3cb583dfcb9bbaf8d4c9fec',
      bindingNonceRandomness: '69cd85f631d5f7f2721ed5e40519b1366f340a87c2f6856363dbdcda348a7501',
      hidingNonce: '812d6104142944d5a55924de6d49940956206909f2acaeedecda2b726e630407',
      bindingNonce: 'b1110165fc2334149750b28dd813a39244f315cff14d4e89e6142f262ed83301',
      hidingNonceCommitment: 'b5aa8ab305882a6fc69cbee9327e5a45e54c08af61ae77cb8207be3d2ce13de3',
      bindingNonceCommitment: '67e98ab55aa310c3120418e5050c9cf76cf387cb20ac9e4b6fdb6f82a469f932',
      bindingFactor: 'f2cb9d7dd9beff688da6fcc83fa89046b3479417f47f55600b106760eb3b5603',
      sigShare: '001719ab5a53ee1a12095cd088fd149702c0720ce5fd2f29dbecf24b7281b603'
    },
    3: {
      hidingNonceRandomness: '86d64a260059e495d0fb4fcc17ea3da7452391baa494d4b00321098ed2a0062f',
      bindingNonceRandomness: '13e6b25afb2eba51716a9a7d44130c0dbae0004a9ef8d7b5550c8a0e07c61775',
      hidingNonce: 'c256de65476204095ebdc01bd11dc10e57b36bc96284595b8215222374f99c0e',
      bindingNonce: '243d71944d929063bc51205714ae3c2218bd3451d0214dfb5aeec2a90c35180d',
      hidingNonceCommitment: 'cfbdb165bd8aad6eb79deb8d287bcc0ab6658ae57fdcc98ed12c0669e90aec91',
      bindingNonceCommitment: '7487bc41a6e712eea2f2af24681b58b1cf1da278ea11fe4e8b78398965f13552',
      bindingFactor: 'b087686bf35a13f3dc78e780a34b0fe8a77fef1b9938c563f5573d71d8d7890f',
      sigShare: 'bd86125de990acc5e1f13781d8e32c03a9bbd4c53539bbc106058bfd14326007'
    }
  },
  signature: '36282629c383bb820a88b71cae937d41f2f2adfcc3d02e55507e2fb9e2dd3cbebd9d2b0844e49ae0f3fa935161e1419aab7b47d21a37ebeae1f17d4987b3160b'
}

export const FROST_VECTOR_CLUSTER = '6b65796d6573682d746573742d303031'

/** A seeded 3-of-5 signing key set plus shares. */
export function seededSigning (): { ks: KeySet, shares: KeyShare[] } {
  const wrap = seededDkg(3, 5, 'keymesh/v1 frost vector wrap').publicKey
  const sign = seededDkg(3, 5, 'keymesh/v1 frost vector sign')
  return { ks: { version: 1, clusterId: FROST_VECTOR_CLUSTER, epoch: 1, threshold: 3, n: 5, wrap, sign: sign.publicKey }, shares: sign.shares }
}

export function generate (): unknown {
  const cases: Array<Record<string, unknown>> = [RFC9591_E1]
  const { ks, shares } = seededSigning()
  for (const signers of [[1, 2, 3], [2, 4, 5], [1, 2, 3, 4, 5]]) {
    const msg = utf8(`keymesh frost vector ${signers.join(',')}`)
    const r1 = signers.map(i => frostCommitWithRng(shares[i - 1]!, drbg(`keymesh/v1 frost vector nonces ${signers.join(',')} signer ${i}`)))
    const cs = r1.map(r => r.commitment)
    const nonces = r1.map(r => ({ hiding: toHex(r.nonces.hiding), binding: toHex(r.nonces.binding) }))
    const sigShares = signers.map((i, j) => frostSignShare(shares[i - 1]!, ks, r1[j]!.nonces, cs, msg))
    const sig = frostAggregate(ks, cs, msg, new Map(signers.map((i, j) => [i, sigShares[j]!])))
    cases.push({
      name: `keymesh 3-of-5, signers ${signers.join(',')}`,
      valid: true,
      seedKeySet: 'seededSigning()',
      signerIndices: signers,
      nonceSeeds: signers.map(i => `keymesh/v1 frost vector nonces ${signers.join(',')} signer ${i}`),
      message: toHex(msg),
      nonces,
      commitments: cs.map(encodeSigningCommitment).map(toHex),
      commitmentList: toHex(encodeSigningCommitments(cs)),
      sigShares: sigShares.map(toHex),
      signature: toHex(sig),
      signKey: toHex(ks.sign.commitments[0]!.toBytes())
    })
  }
  // negative: signer 2's share altered in the [2,4,5] session -> blame [2]
  const good = cases[2] as { sigShares: string[], commitments: string[], message: string, signerIndices: number[] }
  const tampered = [...good.sigShares]
  tampered[0] = toHex(encodeScalar(1n))
  cases.push({ name: 'wrong signature share is blamed', valid: false, signerIndices: good.signerIndices, message: good.message, commitments: good.commitments, sigShares: tampered, error: 'VERIFICATION_FAILED', blame: [2] })
  const nonCanon = [...good.sigShares]; nonCanon[2] = 'ff'.repeat(32)
  cases.push({ name: 'non-canonical signature share is blamed', valid: false, signerIndices: good.signerIndices, message: good.message, commitments: good.commitments, sigShares: nonCanon, error: 'VERIFICATION_FAILED', blame: [5] })
  const c0 = good.commitments[0]!
  const ident = '01' + '00'.repeat(31)
  cases.push({ name: 'commitment with identity hiding point', valid: false, decodeCommitment: c0.slice(0, 2) + ident + c0.slice(66), error: 'BAD_INPUT' })
  cases.push({ name: 'commitment with index 0', valid: false, decodeCommitment: '00' + c0.slice(2), error: 'BAD_INPUT' })
  cases.push({ name: 'commitment list not ascending', valid: false, decodeCommitmentList: toHex(concat(new Uint8Array([2]), Buffer.from(good.commitments[1]!, 'hex'), Buffer.from(good.commitments[0]!, 'hex'))), error: 'BAD_INPUT' })
  return { format: 'frost', version: 1, description: 'FROST(Ed25519, SHA-512) signing: RFC 9591 Appendix E.1 through the keymesh wrapper, keymesh 3-of-5 sessions, codecs and blame (docs/PROTOCOL.md §4.3)', cases }
}
