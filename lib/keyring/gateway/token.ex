defmodule Keyring.Gateway.Token do
  @moduledoc false
  # The gateway's bearer token: 32 random bytes, base64url (43 characters),
  # kept in <data_dir>/gateway.token, mode 0600, in a 0700 directory, written
  # atomically (temp file, fsync, rename) like the identity key.

  @file_name "gateway.token"

  @spec path(Path.t()) :: Path.t()
  def path(data_dir), do: Path.join(data_dir, @file_name)

  @spec load_or_create(Path.t()) :: {:ok, String.t()} | {:error, term()}
  def load_or_create(data_dir) do
    file = path(data_dir)

    with :ok <- private_dir(data_dir) do
      case File.read(file) do
        {:ok, text} -> existing(file, String.trim(text))
        {:error, :enoent} -> create(file)
        {:error, reason} -> {:error, {:token_file, reason}}
      end
    end
  end

  defp existing(file, token) do
    with :ok <- File.chmod(file, 0o600) do
      if byte_size(token) >= 16 and token =~ ~r/\A[\x21-\x7e]+\z/,
        do: {:ok, token},
        else: {:error, {:token_file, :malformed}}
    end
  end

  defp create(file) do
    token = Base.url_encode64(:crypto.strong_rand_bytes(32), padding: false)

    case Keyring.Native.write_file_atomic(file, token <> "\n") do
      {:ok, :ok} -> {:ok, token}
      {:error, reason} -> {:error, {:token_file, reason}}
    end
  end

  defp private_dir(dir) do
    with :ok <- File.mkdir_p(dir), :ok <- File.chmod(dir, 0o700), do: :ok
  end
end
