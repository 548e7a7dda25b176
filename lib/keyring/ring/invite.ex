defmodule Keyring.Ring.Invite do
  @moduledoc false
  # Text form of an invite: "kr1" followed by the canonical invite bytes
  # (native/keyring_core/src/membership/invite.rs) in unpadded base64url.

  @prefix "kr1"

  @spec encode(binary()) :: String.t()
  def encode(bytes), do: @prefix <> Base.url_encode64(bytes, padding: false)

  @spec decode(String.t()) :: {:ok, binary()} | {:error, :invalid_invite}
  def decode(@prefix <> text) do
    case Base.url_decode64(String.trim(text), padding: false) do
      {:ok, bytes} -> {:ok, bytes}
      :error -> {:error, :invalid_invite}
    end
  end

  def decode(_), do: {:error, :invalid_invite}
end
