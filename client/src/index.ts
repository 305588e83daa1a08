// Entry point of the browser runtime (bundled into dist/sx.js).
import './prims';
import './reactive';
import { evalString } from './eval';
import { start, navigate, request, processNode, swap, parseSwap, parseContent, stats } from './engine';
import { processSx, disposeIslands, hydrateIsland, renderFragment, fromWire } from './render';
import { readOne, readAll } from './reader';
import { serialize } from './data';
import { signal, computed, effect, batch, untracked } from './signals';

export * from './values';
export * from './data';
export * from './reader';
export * from './eval';
export * from './signals';
export * from './render';
export * from './engine';
export { jsonEncode } from './prims';

declare const SX_AUTOSTART: boolean;

/** The page-level API (window.SX). */
export const SX = {
  evalString, readOne, readAll, serialize, navigate, request, processNode, processSx, swap, parseSwap,
  parseContent, disposeIslands, hydrateIsland, renderFragment, fromWire,
  signal, computed, effect, batch, untracked, start, stats,
};

if (SX_AUTOSTART && typeof window !== 'undefined' && typeof document !== 'undefined') {
  (window as any).SX = SX;
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => start(window as any));
  else start(window as any);
}
