defmodule Keyring.Identity.NodeId do
  @moduledoc """
  The text form of a node id: the node's 32-byte Ed25519 public key in
  lowercase RFC 4648 base32 without padding, always 52 characters
  (`[a-z2-7]{52}`). Logs, presence and the CLI use this form; `short/1` gives
  the first 10 characters for humans.

      iex> id = Keyring.Identity.NodeId.encode(<<0::256>>)
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      iex> Keyring.Identity.NodeId.parse(id)
      {:ok, <<0::256>>}
      iex> Keyring.Identity.NodeId.parse("not-a-node-id")
      {:error, :invalid_node_id}
  """

  @type t :: String.t()

  @doc "Encodes a 32-byte public key."
  @spec encode(<<_::256>>) :: t()
  def encode(<<_::256>> = public_key), do: Base.encode32(public_key, case: :lower, padding: false)

  def encode(other),
    do: raise(ArgumentError, "a node id encodes a 32-byte public key, got: #{inspect(other)}")

  @doc "Parses the text form back into the public key."
  @spec parse(term()) :: {:ok, <<_::256>>} | {:error, :invalid_node_id}
  def parse(text) when is_binary(text) and byte_size(text) == 52 do
    case Base.decode32(text, case: :lower, padding: false) do
      {:ok, <<_::256>> = key} -> if encode(key) == text, do: {:ok, key}, else: bad()
      _ -> bad()
    end
  end

  def parse(_), do: bad()

  @doc "Like `parse/1` but raises `ArgumentError`."
  @spec parse!(term()) :: <<_::256>>
  def parse!(text) do
    case parse(text) do
      {:ok, key} ->
        key

      {:error, _} ->
        raise ArgumentError,
              "invalid node id #{inspect(text)}: expected 52 characters of lowercase base32"
    end
  end

  @doc "The first 10 characters, for logs."
  @spec short(t()) :: String.t()
  def short(text) when is_binary(text), do: binary_part(text, 0, min(10, byte_size(text)))

  defp bad, do: {:error, :invalid_node_id}
end
