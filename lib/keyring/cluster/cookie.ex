defmodule Keyring.Cluster.Cookie do
  @moduledoc false
  # The Erlang distribution cookie of nodes started by `mix keyring.start`
  # and the demo. There is no default cookie in the code: without
  # `--cookie`, `$KEYRING_COOKIE` or `config :keyring, :cookie`, a random
  # one is generated once and kept in `<dir>/cookie` (mode 0600, dir 0700,
  # `.keyring/` of the working directory by default), so nodes started from
  # one checkout share it and find each other. The cookie is never printed:
  # describe/1 says where it comes from.

  alias Keyring.Identity.PrivateFile

  @file_name "cookie"

  @type source :: :option | :env | :config | {:file, Path.t()}

  @doc "The file a generated cookie is kept in."
  @spec file(Path.t()) :: Path.t()
  def file(dir), do: Path.join(dir, @file_name)

  @doc """
  The cookie to use: `:cookie` option, `$KEYRING_COOKIE`, `config :keyring,
  :cookie`, or the file in `:dir` (default `.keyring`), created with a
  random cookie if missing.
  """
  @spec resolve(keyword()) :: {:ok, atom(), source()} | {:error, term()}
  def resolve(opts \\ []) do
    opts = Keyword.validate!(opts, [:cookie, dir: ".keyring"])

    cond do
      c = opts[:cookie] -> checked(c, :option)
      c = System.get_env("KEYRING_COOKIE") -> checked(c, :env)
      c = Application.get_env(:keyring, :cookie) -> checked(to_string(c), :config)
      true -> from_file(file(opts[:dir]))
    end
  end

  @doc "Where the cookie comes from, for logs (never the cookie itself)."
  @spec describe(source()) :: String.t()
  def describe(:option), do: "from --cookie"
  def describe(:env), do: "from $KEYRING_COOKIE"
  def describe(:config), do: "from config :keyring, :cookie"
  def describe({:file, path}), do: "kept in #{path} (mode 0600)"

  defp from_file(path) do
    case PrivateFile.read(path, 1024) do
      {:ok, bytes} ->
        checked(String.trim(bytes), {:file, path})

      {:error, {:not_found, _}} ->
        # Two nodes starting at once: one creates the file, the other finds
        # it (create-only write) and reads the winner's cookie.
        cookie = Base.encode32(:crypto.strong_rand_bytes(32), padding: false)

        case PrivateFile.write(path, cookie <> "\n", create: true) do
          :ok -> checked(cookie, {:file, path})
          {:error, {:exists, _}} -> from_file(path)
          {:error, _} = error -> error
        end

      {:error, _} = error ->
        error
    end
  end

  # Any text an operator chose, as long as it can be an atom and travels
  # in a handshake: 1..255 bytes, no whitespace or control characters.
  defp checked(cookie, source) do
    if byte_size(cookie) in 1..255 and String.valid?(cookie) and
         not String.match?(cookie, ~r/[\s[:cntrl:]]/u) do
      {:ok, String.to_atom(cookie), source}
    else
      {:error, {:bad_cookie, source}}
    end
  end
end
