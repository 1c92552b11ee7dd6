export function currentRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  return raw
    .split('/')
    .filter((s) => s.length > 0)
    .map((s) => {
    try {
      return decodeURIComponent(s);
    }
    catch {
      return s;
    }
  });
}
export function href(...segments) {
  return '#/' + segments.map(encodeURIComponent).join('/');
}
export function go(...segments) {
  location.hash = href(...segments);
}
