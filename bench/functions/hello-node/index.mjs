// hello — the cold-node benchmark's handler: the least a Node.js function does.
export const handler = async () => ({ hello: "world" });
