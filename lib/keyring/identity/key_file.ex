defmodule Keyring.Identity.KeyFile do
  @moduledoc false
  # Secret keys at rest: the node's <data_dir>/identity.key and the root keys
  # of keyrings this node created (<data_dir>/root_keys/<hex id>.key). The
  # file format and its sealing live in keyring_core (identity/key_file.rs):
  # with a passphrase the seed is sealed with Argon2id + XChaCha20-Poly1305;
  # without one it is protected by the file mode alone (0600 in a 0700
  # directory; see unsealed_warning/1). Files are written atomically and
  # durably, never through a link (Keyring.Identity.PrivateFile).

  require Logger

  alias Keyring.Identity.PrivateFile
  alias Keyring.Native

  @file_name "identity.key"
  @root_keys "root_keys"

  @spec path(Path.t()) :: Path.t()
  def path(data_dir), do: Path.join(data_dir, @file_name)

  @doc "Where the root key of keyring `ring_id` (32 bytes) is kept."
  @spec root_key_path(Path.t(), <<_::256>>) :: Path.t()
  def root_key_path(data_dir, <<_::256>> = ring_id),
    do: Path.join([data_dir, @root_keys, Base.encode16(ring_id, case: :lower) <> ".key"])

  @spec load_or_create(Path.t(), binary() | nil) :: {:ok, reference()} | {:error, term()}
  def load_or_create(data_dir, passphrase) do
    file = path(data_dir)

    case load_secret(file, passphrase) do
      {:error, {:not_found, ^file}} -> create(file, passphrase)
      {:error, {kind, _, _} = reason} when kind in [:io, :not_owner] -> identity_file(reason)
      {:error, {kind, _} = reason} when kind in [:symlink, :not_a_file] -> identity_file(reason)
      other -> other
    end
  end

  defp identity_file(reason), do: {:error, {:identity_file, reason}}

  defp create(file, passphrase) do
    with {:ok, keypair} <- Native.keypair_generate(),
         :ok <- save_secret(file, keypair, passphrase, log_unsealed: :info) do
      {:ok, keypair}
    end
  end

  @doc """
  Seals `keypair` (with `passphrase`, or in the clear when it is nil) into a
  new file at `path`: 0600, in a 0700 directory, atomic and durable. Fails
  with `{:error, {:exists, path}}` if anything is at `path`, unless
  `replace: true` (for instance after a root key was rotated). Without a
  passphrase it logs `unsealed_warning/1` at level `:log_unsealed`
  (default `:warning`).
  """
  @spec save_secret(Path.t(), reference(), binary() | nil, keyword()) ::
          :ok | {:error, term()}
  def save_secret(path, keypair, passphrase, opts \\ []) do
    with {:ok, bytes} <- Native.keypair_seal(keypair, passphrase),
         :ok <- PrivateFile.write(path, bytes, create: not Keyword.get(opts, :replace, false)) do
      if passphrase == nil,
        do: Logger.log(Keyword.get(opts, :log_unsealed, :warning), unsealed_warning(path))

      :ok
    end
  end

  @doc """
  Opens the key file at `path` (checked: a regular file of this user's, not
  a link; a wider mode is narrowed and logged). Errors:
  `{:error, :passphrase_required | :bad_passphrase}`,
  `{:error, {:malformed_key_file, why}}`, or a file error such as
  `{:error, {:symlink, path}}`.
  """
  @spec load_secret(Path.t(), binary() | nil) :: {:ok, reference()} | {:error, term()}
  def load_secret(path, passphrase) do
    with {:ok, bytes} <- PrivateFile.read(path, 4096) do
      Native.keypair_open(bytes, passphrase)
    end
  end

  @doc """
  What protects a key kept without a passphrase, for logs and docs.
  """
  @spec unsealed_warning(Path.t()) :: String.t()
  def unsealed_warning(path) do
    "keyring: #{path} holds a secret key in the clear: only its file mode " <>
      "(0600, in a 0700 directory) protects it. Anyone who can read it as this " <>
      "user or as root, or who gets a copy of the disk or a backup, holds the key. " <>
      "Start the instance with a passphrase to seal it."
  end
end
