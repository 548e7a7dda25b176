defmodule Keyring.Identity.PrivateFile do
  @moduledoc false
  # Owner-only files and directories for secrets at rest: the data dir
  # (0700), the store and key files (0600), the distribution cookie. The work
  # is native/keyring_core/src/identity/private_file.rs: paths are opened
  # without following a link, checked on the open descriptor (type, owner),
  # and group/other bits are removed there. A narrowed path is logged as a
  # warning: what it held may have been read while it was open.
  #
  # Wider modes are repaired, not refused: the owner's own files are always
  # safe to narrow, and refusing would stop an upgraded node for a condition
  # it can fix. A path that is a link, of the wrong type, or owned by another
  # user is refused (its mode cannot be trusted or fixed).

  require Logger

  alias Keyring.Native

  @type reason :: {atom(), Path.t()} | {atom(), Path.t(), term()}

  @doc """
  Creates `dir` (0700) if needed and narrows it to its owner. Narrowing an
  empty directory (one just made with `mkdir`) is logged at info level:
  nothing in it could have been read.
  """
  @spec ensure_dir(Path.t()) :: :ok | {:error, reason()}
  def ensure_dir(dir) do
    case Native.ensure_private_dir(dir) do
      {:ok, {:narrowed, mode}} when is_integer(mode) ->
        if File.ls(dir) == {:ok, []} do
          Logger.info("keyring: #{dir} had mode #{octal(mode)}; narrowed to owner-only")
          :ok
        else
          report({:ok, {:narrowed, mode}}, dir)
        end

      other ->
        report(other, dir)
    end
  end

  @doc "Narrows the existing file `path` to its owner (refusing links)."
  @spec ensure_file(Path.t()) :: :ok | {:error, reason()}
  def ensure_file(path), do: Native.ensure_private_file(path) |> report(path)

  @doc "Reads a private file of at most `max_len` bytes (checked and narrowed)."
  @spec read(Path.t(), pos_integer()) :: {:ok, binary()} | {:error, reason()}
  def read(path, max_len \\ 65_536) do
    case Native.read_private_file(path, max_len) do
      {:ok, {bytes, access}} ->
        report({:ok, access}, path)
        {:ok, bytes}

      {:error, _} = error ->
        error
    end
  end

  @doc """
  Writes `bytes` to `path` (0600) atomically and durably. With
  `create: true` it fails with `{:error, {:exists, path}}` if anything is
  there already (used where two processes may race to create one file).
  """
  @spec write(Path.t(), iodata(), keyword()) :: :ok | {:error, reason()}
  def write(path, bytes, opts \\ []) do
    bytes = IO.iodata_to_binary(bytes)

    result =
      if Keyword.get(opts, :create, false),
        do: Native.write_file_new(path, bytes),
        else: Native.write_file_atomic(path, bytes)

    case result do
      {:ok, :ok} -> :ok
      {:error, _} = error -> error
    end
  end

  @doc "Creates `path` as an empty 0600 file unless something is there."
  @spec touch(Path.t()) :: :ok | {:error, reason()}
  def touch(path) do
    case write(path, "", create: true) do
      {:error, {:exists, _}} -> :ok
      other -> other
    end
  end

  defp report({:ok, :private}, _path), do: :ok

  defp report({:ok, {:narrowed, mode}}, path) do
    Logger.warning(
      "keyring: #{path} had mode #{octal(mode)} (group or others could use it); " <>
        "narrowed to owner-only #{octal(Bitwise.band(mode, 0o7700))}. " <>
        "Anything secret in it may have been read meanwhile: consider rotating it."
    )

    :ok
  end

  defp report({:error, _} = error, _path), do: error

  defp octal(mode), do: "0" <> Integer.to_string(mode, 8)
end
