// Runs LangFlow's Node client exactly as its README shows against a base URL; prints what
// it got as one JSON object for tests/api/test_langflow_compat_node.py to check.
// Usage: node client.mjs <baseUrl> <flowId> <apiKey> <tweakComponent>
import { LangflowClient } from "@datastax/langflow-client";

const [baseUrl, flowId, apiKey, tweakComponent] = process.argv.slice(2);
const client = new LangflowClient({ baseUrl, apiKey });

const run = await client.flow(flowId).run("Hello from node");
const tweaked = await client
  .flow(flowId)
  .tweak(tweakComponent, { template: "Answer like a robot." })
  .run("tweaked");
const session = await client.flow(flowId).run("in a session", { session_id: "node-s1" });

const events = [];
const stream = await client.flow(flowId).stream("stream from node");
for await (const event of stream) {
  events.push(event);
}
const end = events.at(-1);
console.log(
  JSON.stringify({
    run: { sessionId: run.sessionId, text: run.chatOutputText() },
    tweaked: tweaked.chatOutputText(),
    session: session.sessionId,
    stream: {
      kinds: events.map((e) => e.event),
      tokens: events.filter((e) => e.event === "token").map((e) => e.data.chunk),
      endText: end?.data?.result?.outputs?.[0]?.outputs?.[0]?.outputs?.message?.message,
    },
  }),
);
