// Hash routes (`#/projects/my-slug/clients`), so back/forward work and the page needs nothing
// from the server beyond /portal/. Segments are percent-encoded.

export function currentRoute(): string[] {
  const raw = location.hash.replace(/^#\/?/, '');
  return raw
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => {
      try {
        return decodeURIComponent(s);
      } catch {
        return s;
      }
    });
}

/** `#/a/b` for segments `a`, `b`. */
export function href(...segments: string[]): string {
  return '#/' + segments.map(encodeURIComponent).join('/');
}

export function go(...segments: string[]): void {
  location.hash = href(...segments);
}
