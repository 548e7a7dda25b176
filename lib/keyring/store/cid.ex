defmodule Keyring.Store.Cid do
  @moduledoc """
  Content ids. A cid is the BLAKE3 hash of a blob's bytes. The public API
  returns cids as 64-character lowercase hex strings (the form `b3sum`
  prints) and accepts either that form or the raw 32-byte digest.

      iex> cid = Keyring.Store.Cid.of("hello")
      "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
      iex> Keyring.Store.Cid.parse(cid) == {:ok, Keyring.Hash.hash("hello")}
      true
      iex> Keyring.Store.Cid.parse("nope")
      {:error, :invalid_cid}
  """

  @type t :: String.t()

  @doc "The cid of `data`."
  @spec of(binary()) :: t()
  def of(data), do: data |> Keyring.Hash.hash() |> encode()

  @doc "Encodes a raw 32-byte digest."
  @spec encode(<<_::256>>) :: t()
  def encode(<<_::256>> = digest), do: Base.encode16(digest, case: :lower)

  @doc "Parses a hex cid (either case) or accepts a raw 32-byte digest."
  @spec parse(term()) :: {:ok, <<_::256>>} | {:error, :invalid_cid}
  def parse(<<_::256>> = raw), do: {:ok, raw}

  def parse(hex) when is_binary(hex) and byte_size(hex) == 64 do
    case Base.decode16(hex, case: :mixed) do
      {:ok, raw} -> {:ok, raw}
      :error -> {:error, :invalid_cid}
    end
  end

  def parse(_), do: {:error, :invalid_cid}

  @doc "Like `parse/1`, raising `ArgumentError` for malformed cids."
  @spec parse!(term()) :: <<_::256>>
  def parse!(cid) do
    case parse(cid) do
      {:ok, raw} ->
        raw

      {:error, :invalid_cid} ->
        raise ArgumentError,
              "invalid cid #{inspect(cid, limit: 3, printable_limit: 80)}: expected 64 hex characters or a 32-byte digest"
    end
  end
end
