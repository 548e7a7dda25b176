defmodule Keyring.Identity.KeyFile do
  @moduledoc false
  # Loads the node's key pair from <data_dir>/identity.key, creating it on first
  # start. The file format and its sealing live in keyring_core
  # (identity/key_file.rs); writes are atomic and durable (temp file, fsync,
  # rename, fsync dir) with mode 0600.

  alias Keyring.Native

  @file_name "identity.key"

  @spec path(Path.t()) :: Path.t()
  def path(data_dir), do: Path.join(data_dir, @file_name)

  @spec load_or_create(Path.t(), binary() | nil) :: {:ok, reference()} | {:error, term()}
  def load_or_create(data_dir, passphrase) do
    file = path(data_dir)

    case File.read(file) do
      {:ok, bytes} -> Native.keypair_open(bytes, passphrase)
      {:error, :enoent} -> create(file, passphrase)
      {:error, reason} -> {:error, {:identity_file, reason}}
    end
  end

  defp create(file, passphrase) do
    with {:ok, keypair} <- Native.keypair_generate(),
         {:ok, bytes} <- Native.keypair_seal(keypair, passphrase),
         {:ok, :ok} <- Native.write_file_atomic(file, bytes) do
      {:ok, keypair}
    end
  end
end
