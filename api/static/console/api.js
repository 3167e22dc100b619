// Talking to the hub API: the key typed in, the Basic header, errors as the API words them.
const STORE = "hub-console-key";
let credentials = sessionStorage.getItem(STORE);

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function signedIn() {
  return credentials !== null;
}

export function userId() {
  return credentials ? credentials.slice(0, credentials.indexOf(":")) : "";
}

export function signIn(text) {
  const value = text.trim();
  if (value.indexOf(":") < 1) throw new ApiError(0, "bad_key", "Type the key as userId:apiKey.");
  credentials = value;
  sessionStorage.setItem(STORE, value);
}

export function signOut() {
  credentials = null;
  sessionStorage.removeItem(STORE);
}

function basic(value) {
  const bytes = new TextEncoder().encode(value);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return "Basic " + btoa(binary);
}

// Calls the API; answers the parsed JSON body (null when empty), throws ApiError otherwise.
export async function api(method, path, body, query) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, String(v));
  }
  const headers = { Accept: "application/json" };
  if (credentials) headers.Authorization = basic(credentials);
  const init = { method, headers, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "network", "The hub did not answer: " + err.message);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (data && typeof data.message === "string") {
      throw new ApiError(response.status, data.error || "", data.message, data.details);
    }
    throw new ApiError(response.status, "http_" + response.status, `The hub answered ${response.status} ${response.statusText}${text && !data ? ": " + text.slice(0, 200) : ""}`);
  }
  return data;
}

export const enc = encodeURIComponent;
