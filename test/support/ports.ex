defmodule Keyring.Test.Ports do
  @moduledoc false

  @doc "A loopback UDP port that was free a moment ago (for a node to bind and bind again)."
  def free_udp do
    {:ok, socket} = :gen_udp.open(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :gen_udp.close(socket)
    port
  end
end
