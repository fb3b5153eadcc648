// The smallest Node.js function: `lambent deploy` with handler `index.handler`, runtime nodejs20.x.
export const handler = async (event, context) => ({ message: `Hello, ${event.name ?? 'world'}!` });
