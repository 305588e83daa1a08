// The node tests' build: everything the bundle has, plus render-html.
export * from './index';
export * from './html';
