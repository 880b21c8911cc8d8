// Hearth node runtime example: an async handler, as on Lambda.
let calls = 0; // module state lives as long as the warm worker

exports.handler = async (event, context) => {
  calls += 1;
  console.log('hello from', context.functionName, 'call', calls);
  return { hello: event.name || 'world', calls };
};
