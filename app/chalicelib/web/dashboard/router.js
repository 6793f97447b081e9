// The dashboard's routes live in the URL's hash: "#/activity?status=BOUNCED", "#/message/<id>".

/** "#/activity/x?status=BOUNCED" → { name: "activity", arg: "x", params } */
export function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const [name = "", ...rest] = path.split("/");
  return {
    name,
    arg: rest.length ? decodeURIComponent(rest.join("/")) : "",
    params: new URLSearchParams(query),
  };
}

/** Change the hash's query without a new history entry (filters, pages). */
export function setParams(params) {
  const { name, arg } = parseHash();
  const path = `#/${name}${arg ? "/" + encodeURIComponent(arg) : ""}`;
  const query = params.toString();
  history.replaceState(null, "", query ? `${path}?${query}` : path);
}
