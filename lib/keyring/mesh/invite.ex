defmodule Keyring.Mesh.Invite do
  @moduledoc false
  # Text form of an invite: "kr1" followed by the canonical invite bytes
  # (native/keyring_core/src/membership/invite.rs) in unpadded base64url, and
  # the address hints it carries ("MESH_ADDR JOIN_ADDR", each "host:port").
  # Hints come from whoever wrote the invite: they are parsed and resolved
  # here, in the joiner's own process, never inside the mesh process.

  @prefix "kr1"
  @resolve_timeout 5_000

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

  @doc """
  The member and join addresses of an invite's hint, as `"ip:port"` strings
  (host names resolved), or `{:error, :bad_address_hint}`.
  """
  @spec addresses(String.t()) :: {:ok, {String.t(), String.t()}} | {:error, :bad_address_hint}
  def addresses(hint) when is_binary(hint) do
    with [mesh, join] <- String.split(hint, " "),
         {:ok, mesh} <- resolve(mesh),
         {:ok, join} <- resolve(join) do
      {:ok, {mesh, join}}
    else
      _ -> {:error, :bad_address_hint}
    end
  end

  defp resolve(text) do
    with {:ok, {host, port}} when port > 0 <- Keyring.Options.parse_address(text),
         {:ok, ip} <- lookup(host) do
      {:ok, format(ip, port)}
    else
      _ -> :error
    end
  end

  defp lookup(host) do
    case :inet.parse_address(to_charlist(host)) do
      {:ok, ip} ->
        {:ok, ip}

      {:error, _} ->
        if host =~ ~r/^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$/ do
          task = Task.async(fn -> getaddr(to_charlist(host)) end)

          case Task.yield(task, @resolve_timeout) || Task.shutdown(task, :brutal_kill) do
            {:ok, result} -> result
            _ -> :error
          end
        else
          :error
        end
    end
  end

  defp getaddr(host) do
    with {:error, _} <- :inet.getaddr(host, :inet),
         {:error, _} <- :inet.getaddr(host, :inet6),
         do: :error
  end

  defp format({_, _, _, _} = ip, port), do: "#{:inet.ntoa(ip)}:#{port}"
  defp format(ip, port), do: "[#{:inet.ntoa(ip)}]:#{port}"
end
