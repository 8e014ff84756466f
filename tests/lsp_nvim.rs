//! A real editor's client: Neovim (Debian's, headless) with its built-in
//! LSP client attached to `relance lsp` on a copy of `campaigns/`. The
//! test introduces an error and checks that it shows in
//! `vim.diagnostic.get()`, then asks for the definition of `send offer`
//! and checks that the cursor lands on the template's line.
//!
//! Neovim comes from `RELANCE_TEST_NVIM` (set by `.ci/run`, which
//! installs it) or `nvim` on the PATH. Under `CI` a missing Neovim fails
//! the test; elsewhere it is skipped with a warning.

#[path = "lsp/client.rs"]
mod client;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use client::{BIN, campaigns};

fn missing(what: &str) {
    let message = format!("{what} (.ci/run installs Debian's neovim)");
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n!!!!! SKIPPED the Neovim test: {message} !!!!!\n");
}

fn nvim() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RELANCE_TEST_NVIM") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nvim"))
            .find(|p| p.is_file())
    })
}

/// The script Neovim runs: it writes what it saw to `OUT` as lines
/// `key=value`, then quits. Written for Neovim 0.7 (Debian 12's) and later.
const SCRIPT: &str = r#"
local root, bin, out = ROOT, BIN, OUT
local lines = {}
local function say(k, v) table.insert(lines, k .. '=' .. tostring(v)) end
local function finish()
  local f = io.open(out, 'w'); f:write(table.concat(lines, '\n') .. '\n'); f:close()
  vim.cmd('qa!')
end
local ok, err = pcall(function()
  local id = vim.lsp.start_client({
    name = 'relance',
    cmd = { bin, 'lsp' },
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = 'campaigns' } },
  })
  say('client', id)
  vim.cmd('edit ' .. root .. '/segments.camp')
  vim.lsp.buf_attach_client(0, id)
  -- An error: a segment named wrongly.
  local n = vim.api.nvim_buf_line_count(0)
  for i = 0, n - 1 do
    local l = vim.api.nvim_buf_get_lines(0, i, i + 1, false)[1]
    if l:find('^segment marketable = ') then
      vim.api.nvim_buf_set_lines(0, i, i + 1, false, { 'segment marketable = not undesirabel and not hard_bounced' })
      say('edited_line', i)
    end
  end
  local seen = vim.wait(60000, function()
    for _, d in ipairs(vim.diagnostic.get(0)) do
      if d.message:find('undesirabel', 1, true) then
        say('diagnostic_line', d.lnum)
        say('diagnostic_code', d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code))
        return true
      end
    end
    return false
  end, 20)
  say('diagnostic', seen)
  -- Go to the definition of `offer` in `send offer`.
  vim.cmd('edit ' .. root .. '/scenarios.camp')
  vim.lsp.buf_attach_client(0, id)
  local n = vim.api.nvim_buf_line_count(0)
  for i = 0, n - 1 do
    local l = vim.api.nvim_buf_get_lines(0, i, i + 1, false)[1]
    if l == '  send offer' then
      vim.api.nvim_win_set_cursor(0, { i + 1, 8 })
      break
    end
  end
  -- The server may still be starting on this buffer: ask until it answers.
  local jumped = vim.wait(60000, function()
    if vim.api.nvim_buf_get_name(0):find('templates.camp', 1, true) then return true end
    vim.lsp.buf.definition()
    return vim.wait(1000, function()
      return vim.api.nvim_buf_get_name(0):find('templates.camp', 1, true) ~= nil
    end, 20)
  end, 50)
  say('jumped', jumped)
  say('file', vim.api.nvim_buf_get_name(0))
  say('line', vim.api.nvim_win_get_cursor(0)[1] - 1)
  say('column', vim.api.nvim_win_get_cursor(0)[2])
end)
if not ok then say('error', err) end
finish()
"#;

#[test]
fn neovim_shows_diagnostics_and_jumps_to_definitions() {
    let Some(nvim) = nvim() else {
        missing("Neovim: RELANCE_TEST_NVIM is not set and `nvim` is not on the PATH");
        return;
    };
    let t = campaigns("nvim");
    let root = t.path();
    let out = root.join("nvim-result.txt");
    let script = root.join("test.lua");
    let lua_str = |s: &str| format!("{s:?}");
    let text = SCRIPT
        .replacen("ROOT", &lua_str(&root.display().to_string()), 1)
        .replacen("BIN", &lua_str(BIN), 1)
        .replacen("OUT", &lua_str(&out.display().to_string()), 1);
    std::fs::write(&script, text).unwrap();
    let mut child = Command::new(&nvim)
        .args(["--headless", "-n", "-i", "NONE", "-u", "NONE", "-c"])
        .arg(format!("luafile {}", script.display()))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .env("XDG_STATE_HOME", root.join(".state"))
        .env("XDG_DATA_HOME", root.join(".data"))
        .env("XDG_CONFIG_HOME", root.join(".config"))
        .spawn()
        .expect("start nvim");
    // A bound on hanging, far above the few seconds this takes.
    let until = Instant::now() + Duration::from_secs(300);
    loop {
        if child.try_wait().expect("wait for nvim").is_some() {
            break;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("nvim did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let result = std::fs::read_to_string(&out).expect("nvim wrote its result");
    let get = |k: &str| {
        result
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no `{k}` in:\n{result}"))
            .to_string()
    };
    assert!(!result.contains("error="), "{result}");
    assert_eq!(get("diagnostic"), "true", "{result}");
    assert_eq!(get("diagnostic_line"), get("edited_line"), "{result}");
    assert_eq!(get("diagnostic_code"), "E0208", "{result}");
    assert_eq!(get("jumped"), "true", "{result}");
    assert!(get("file").ends_with("templates.camp"), "{result}");
    let templates = std::fs::read_to_string(root.join("templates.camp")).unwrap();
    let line = templates
        .lines()
        .position(|l| l.starts_with("template offer :"))
        .unwrap();
    assert_eq!(get("line"), line.to_string(), "{result}");
    assert_eq!(get("column"), "9", "the cursor is on the name: {result}");
}
