// A fless function: main receives the invocation's JSON args and returns
// (or resolves to) its JSON result. console.log goes to the function's log;
// fetch(url, {method, headers, body}) reaches hosts on its allow-list.
export function main(args) {
  const name = args.name ?? "world";
  return { message: `Hello, ${name}!` };
}
