defmodule Mix.Tasks.Compile.KeyringNif do
  @moduledoc """
  Builds the Rust NIF crate `keyring_nif` with `cargo build --release` and copies
  the library to `priv/native/libkeyring_nif.so`.

  Stands in for the `rustler` hex package's compile step (hex.pm is not reachable
  from our machines). Enabled by `compilers: [:keyring_nif | Mix.compilers()]`.
  Set `KEYRING_SKIP_NIF_BUILD=1` to skip cargo (e.g. when a prebuilt library is
  already in `priv/native/`).
  """
  use Mix.Task.Compiler

  @crate "keyring_nif"
  @out_dir "priv/native"
  @target_dir "_build/cargo"

  @impl Mix.Task.Compiler
  def run(args) do
    {opts, _, _} = OptionParser.parse(args, switches: [force: :boolean])
    dest = Path.join(@out_dir, "lib#{@crate}.so")

    cond do
      System.get_env("KEYRING_SKIP_NIF_BUILD") in ["1", "true"] -> {:noop, []}
      opts[:force] || Mix.Utils.stale?(sources(), [dest]) -> build(dest)
      true -> {:noop, []}
    end
  end

  # Erlang's wildcard rejects "/" inside {a,b} alternatives, so glob separately.
  defp sources do
    ["Cargo.toml", "Cargo.lock", ".cargo/config.toml"]
    |> Enum.filter(&File.exists?/1)
    |> Kernel.++(Path.wildcard("native/*/Cargo.toml"))
    |> Kernel.++(Path.wildcard("native/*/src/**/*.rs"))
  end

  defp build(dest) do
    System.find_executable("cargo") ||
      Mix.raise("""
      cargo was not found in PATH. Keyring's native code (native/#{@crate}) needs a
      Rust toolchain: install it with rustup, or run bin/setup.
      """)

    Mix.shell().info("Compiling NIF crate #{@crate} (cargo build --release)")

    {_, status} =
      System.cmd(
        "cargo",
        ["build", "--release", "--package", @crate, "--target-dir", @target_dir],
        stderr_to_stdout: true,
        into: IO.stream(:stdio, :line)
      )

    if status == 0 do
      File.mkdir_p!(@out_dir)
      # Remove first: overwriting a .so that a running VM has mapped can crash it.
      File.rm(dest)
      File.cp!(Path.join([@target_dir, "release", "lib#{@crate}.so"]), dest)
      Mix.Project.build_structure()
      {:ok, []}
    else
      {:error,
       [
         %Mix.Task.Compiler.Diagnostic{
           compiler_name: "keyring_nif",
           file: Path.expand("native/#{@crate}"),
           message: "cargo build failed with exit status #{status}",
           position: nil,
           severity: :error
         }
       ]}
    end
  end

  @impl Mix.Task.Compiler
  def clean do
    File.rm_rf!(@out_dir)
    :ok
  end
end

defmodule Keyring.MixProject do
  use Mix.Project

  def project do
    [
      app: :keyring,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      compilers: [:keyring_nif | Mix.compilers()],
      elixirc_paths: elixirc_paths(Mix.env()),
      deps: []
    ]
  end

  def application do
    [
      mod: {Keyring.Application, []},
      extra_applications: [:logger, :crypto, :runtime_tools]
    ]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end
