/**
 * Hash routes: the console is a static site (S3 + CloudFront, or the local platform), so every page
 * lives behind `#/…` and the server never needs a rewrite rule.
 */
export type Route =
  | { readonly page: "files" }
  | { readonly page: "file"; readonly id: string }
  | { readonly page: "fine-tuning" }
  | { readonly page: "job"; readonly id: string }
  | { readonly page: "models" }
  | { readonly page: "playground"; readonly model?: string };

/** The route of `location.hash`; anything unknown is the files page. */
export function parseRoute(hash: string): Route {
  const [path = "", query = ""] = hash.replace(/^#/, "").split("?", 2);
  const parts = path.split("/").filter(Boolean).map(safeDecode);
  const [first, second] = parts;
  if (first === "files" && second) return { page: "file", id: second };
  if (first === "jobs" && second) return { page: "job", id: second };
  if (first === "fine-tuning") return { page: "fine-tuning" };
  if (first === "models") return { page: "models" };
  if (first === "playground") {
    const model = new URLSearchParams(query).get("model");
    return model ? { page: "playground", model } : { page: "playground" };
  }
  return { page: "files" };
}

/** The hash of a route, for links. */
export function routeHref(route: Route): string {
  switch (route.page) {
    case "file":
      return `#/files/${encodeURIComponent(route.id)}`;
    case "job":
      return `#/jobs/${encodeURIComponent(route.id)}`;
    case "playground":
      return route.model ? `#/playground?model=${encodeURIComponent(route.model)}` : "#/playground";
    default:
      return `#/${route.page}`;
  }
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
