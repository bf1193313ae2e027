// The Vercel AI SDK (`ai` + `@ai-sdk/openai`), unmodified, driving Cerver sessions: only
// baseURL, apiKey and the X-Cerver-Session-Id header are Cerver's. The same conversation runs
// twice, through Chat Completions (`cerver.chat(model)`) and through the Responses API (the
// SDK's default, `cerver(model)`), each in its own session. Prints one JSON object with what
// the SDK saw; tests/e2e/test_ai_sdk.py checks it.
// Usage: node ai_sdk_conversation.cjs URL KEY CHAT_SESSION_ID RESPONSES_SESSION_ID
const { generateText, jsonSchema, stepCountIs, streamText, tool } = require("ai");
const { createOpenAI } = require("@ai-sdk/openai");

async function conversation(url, apiKey, sessionId, api) {
  const cerver = createOpenAI({
    baseURL: `${url}/v1`,
    apiKey,
    headers: { "X-Cerver-Session-Id": sessionId },
  });
  const model = (name) => (api === "chat" ? cerver.chat(name) : cerver.responses(name));
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
    model: model("claude-sonnet-4-5"),
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
  // Through Responses a non-reasoning model makes the SDK re-send earlier answers as
  // item_reference items (it defaults to store: true); Chat Completions swaps to gpt-5.
  const swapTo = api === "chat" ? "gpt-5" : "claude-haiku-4-5";
  const second = streamText({ model: model(swapTo), messages, tools: { shell }, maxRetries: 0 });
  let streamed = "";
  for await (const delta of second.textStream) streamed += delta;
  const secondResponse = await second.response;

  // An unknown model (in a new conversation): the SDK's own error class, Cerver's message.
  let error = null;
  const fresh = createOpenAI({ baseURL: `${url}/v1`, apiKey });
  try {
    const unknown = api === "chat" ? fresh.chat("claud-haiku-4-5") : fresh.responses("claud-haiku-4-5");
    await generateText({ model: unknown, prompt: "hi", maxRetries: 0 });
  } catch (exc) {
    error = { name: exc.name, status: exc.statusCode, message: exc.message };
  }

  return {
    ran,
    first: {
      text: first.text,
      steps: first.steps.length,
      toolCalls: first.steps.flatMap((step) => step.toolCalls.map((call) => call.toolName)),
    },
    second: { text: streamed, model: secondResponse.headers["x-cerver-model"] },
    error,
  };
}

async function main() {
  const [url, apiKey, chatSession, responsesSession] = process.argv.slice(2);
  const chat = await conversation(url, apiKey, chatSession, "chat");
  const responses = await conversation(url, apiKey, responsesSession, "responses");
  console.log(JSON.stringify({ chat, responses }));
}

main().catch((exc) => {
  console.error(exc);
  process.exit(1);
});
