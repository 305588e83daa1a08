// Entry point of the browser runtime.
import './prims';
export * from './values';
export * from './data';
export * from './reader';
export * from './eval';
export { jsonEncode } from './prims';
