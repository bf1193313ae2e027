// The Vercel AI SDK (`ai` + `@ai-sdk/openai`), unmodified, driving one Cerver session: only
// baseURL, apiKey and the X-Cerver-Session-Id header are Cerver's. Prints one JSON object with
// what the SDK saw; tests/e2e/test_ai_sdk.py checks it. Usage: node ai_sdk_conversation.cjs URL KEY SESSION_ID
const { generateText, jsonSchema, stepCountIs, streamText, tool } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");

async function main() {
  const [url, apiKey, sessionId] = process.argv.slice(2);
  const cerver = createOpenAI({
    baseURL: `${url}/v1`,
    apiKey,
    headers: { "X-Cerver-Session-Id": sessionId },
  });
  const ran = [];
  const shell = tool({
    description: "Run a command on the user's machine.",
    inputSchema: jsonSchema({
      type: "object",
      properties: { command: { type: "string" } },
      required: ["command"],
    }),
    execute: async ({ command }) => {
      ran.push(command);
      return `${command}: up 3 days`;
    },
  });

  // Turn 1 (Chat Completions): the model calls the app's tool, the SDK runs it and continues.
  const question = { role: "user", content: "run: uptime" };
  const first = await generateText({
    model: cerver.chat("claude-sonnet-4-5"),
    messages: [question],
    tools: { shell },
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });

  // Turn 2, streamed, swapping the model: the SDK re-sends the whole conversation.
  const messages = [
    question,
    ...first.response.messages,
    { role: "user", content: "What did I ask first?" },
  ];
  const second = streamText({ model: cerver.chat("gpt-5"), messages, tools: { shell }, maxRetries: 0 });
  let streamed = "";
  for await (const delta of second.textStream) streamed += delta;
  const secondResponse = await second.response;

  // An unknown model (in a new conversation): the SDK's own error class, Cerver's message.
  let error = null;
  const fresh = createOpenAI({ baseURL: `${url}/v1`, apiKey });
  try {
    await generateText({ model: fresh.chat("claud-haiku-4-5"), prompt: "hi", maxRetries: 0 });
  } catch (exc) {
    error = { name: exc.name, status: exc.statusCode, message: exc.message };
  }

  console.log(
    JSON.stringify({
      ran,
      first: {
        text: first.text,
        steps: first.steps.length,
        toolCalls: first.steps.flatMap((step) => step.toolCalls.map((call) => call.toolName)),
      },
      second: { text: streamed, model: secondResponse.headers["x-cerver-model"] },
      error,
    }),
  );
}

main().catch((exc) => {
  console.error(exc);
  process.exit(1);
});
