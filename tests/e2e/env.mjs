// The e2e scripts' settings: `cargo xtask test` sets them; run by hand, a missing one stops the
// script at once, saying which (exit 2), rather than failing later on `undefined`.
export const need = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set (run \`cargo xtask test\`)`);
    process.exit(2);
  }
  return value;
};
