// The Vercel AI SDK against a live chatsite, run by tests/clients/test_ai_sdk.py.
//
// BASE_URL (the server's /v1) and API_KEY come from the environment; the arguments name the checks to run
// (default: all of them). Prints one JSON line: {check: {call: result}}, where a call that threw has
// {error: {...}} with what the SDK saw (status, response body, the request it sent), so a failing test
// shows the server's answer.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, Output, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const { BASE_URL, API_KEY } = process.env;
if (!BASE_URL || !API_KEY) {
  console.error("BASE_URL and API_KEY must be set");
  process.exit(2);
}
const provider = createOpenAI({ baseURL: BASE_URL, apiKey: API_KEY });

function describeError(error) {
  return {
    name: error?.name,
    message: error?.message,
    statusCode: error?.statusCode,
    responseBody: error?.responseBody,
    url: error?.url,
    requestBodyValues: error?.requestBodyValues,
    cause: error?.cause?.message,
  };
}

async function attempt(call) {
  try {
    return await call();
  } catch (error) {
    return { error: describeError(error) };
  }
}

async function generate(model, prompt) {
  const result = await generateText({ model, prompt, maxRetries: 0 });
  return { text: result.text, finishReason: result.finishReason, outputTokens: result.usage.outputTokens };
}

// streamText reports errors to onError rather than throwing from the stream: keep the first one.
async function stream(model, prompt) {
  let streamError;
  const result = streamText({ model, prompt, maxRetries: 0, onError: ({ error }) => { streamError ??= error; } });
  const parts = [];
  for await (const part of result.textStream) parts.push(part);
  if (streamError) throw streamError;
  return { text: parts.join(""), parts: parts.length, finishReason: await result.finishReason };
}

const getWeather = tool({
  description: "The weather in a city.",
  inputSchema: z.object({ city: z.string(), unit: z.string() }),
  execute: async ({ city, unit }) => `18 degrees ${unit} and sunny in ${city}`,
});

function stepsSummary(text, steps) {
  return {
    text,
    steps: steps.length,
    toolCalls: steps[0].toolCalls.map((call) => ({ toolName: call.toolName, input: call.input })),
    toolResults: steps[0].toolResults.map((toolResult) => toolResult.output),
  };
}

// Two steps: the model calls the tool, the SDK runs it and sends its result back, the model answers.
async function toolRoundTrip(model, prompt) {
  const result = await generateText({
    model, prompt, maxRetries: 0, tools: { get_weather: getWeather }, stopWhen: stepCountIs(2),
  });
  return stepsSummary(result.text, result.steps);
}

async function streamedToolRoundTrip(model, prompt) {
  let streamError;
  const result = streamText({
    model, prompt, maxRetries: 0, tools: { get_weather: getWeather }, stopWhen: stepCountIs(2),
    onError: ({ error }) => { streamError ??= error; },
  });
  const parts = [];
  for await (const part of result.textStream) parts.push(part);
  if (streamError) throw streamError;
  return stepsSummary(parts.join(""), await result.steps);
}

// The usual chat loop: each turn pushes the user's message, then the answer's messages, and sends them all.
async function conversationLoop(model, prompts, providerOptions = {}) {
  const messages = [];
  const texts = [];
  for (const prompt of prompts) {
    messages.push({ role: "user", content: prompt });
    const result = await generateText({ model, messages, maxRetries: 0, providerOptions });
    messages.push(...result.response.messages);
    texts.push(result.text);
  }
  return { texts };
}

async function structured(model, prompt) {
  const result = await generateText({
    model, prompt, maxRetries: 0,
    output: Output.object({ schema: z.object({ city: z.string(), unit: z.string() }), name: "Weather" }),
  });
  return { output: result.output };
}

const CHECKS = {
  // The default model API of @ai-sdk/openai: the Responses API (/v1/responses).
  responses: async () => ({
    generateText: await attempt(() => generate(provider("fake-model"), "generateText over the Responses API")),
    streamText: await attempt(() => stream(provider("fake-model"), "streamText over the Responses API")),
  }),
  "responses-tools": async () => ({
    generateText: await attempt(() => toolRoundTrip(provider("fake-model"), "Weather in Paris?")),
    streamText: await attempt(() => streamedToolRoundTrip(provider("fake-model"), "Weather in Paris?")),
  }),
  "responses-loop": async () => ({
    generateText: await attempt(() => conversationLoop(provider("fake-model"), ["Hello!", "Tell me more."])),
  }),
  // store: false: nothing to refer to by id, so the SDK resends the answers in full.
  "responses-unstored-loop": async () => ({
    generateText: await attempt(() => conversationLoop(
      provider("fake-model"), ["Hello!", "Tell me more."], { openai: { store: false } },
    )),
  }),
  "responses-structured": async () => ({
    generateText: await attempt(() => structured(provider("fake-model"), "Weather in Oslo?")),
  }),
  chat: async () => ({
    generateText: await attempt(() => generate(provider.chat("fake-model"), "generateText over Chat Completions")),
    streamText: await attempt(() => stream(provider.chat("fake-model"), "streamText over Chat Completions")),
  }),
  "chat-tools": async () => ({
    generateText: await attempt(() => toolRoundTrip(provider.chat("fake-model"), "Weather in Paris?")),
  }),
  "chat-structured": async () => ({
    generateText: await attempt(() => structured(provider.chat("fake-model"), "Weather in Oslo?")),
  }),
};

const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(CHECKS);
const unknown = names.filter((name) => !(name in CHECKS));
if (unknown.length) {
  console.error(`unknown checks: ${unknown.join(", ")} (known: ${Object.keys(CHECKS).join(", ")})`);
  process.exit(2);
}
const results = {};
for (const name of names) results[name] = await CHECKS[name]();
console.log(JSON.stringify(results));
