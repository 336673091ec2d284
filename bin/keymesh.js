#!/usr/bin/env node
// Shim: run the TypeScript CLI through tsx (no build step). Works as the package.json "bin" and as
// `node bin/keymesh.js`.
import { register } from 'tsx/esm/api'

register()
await import('./keymesh.ts')
